"""Builders of crafted, broken and hostile files for the safety and fuzz tests."""
import io as _io
import json
import struct
import zipfile

import numpy as np

import tinyae as ta


def small_model(seed=0, sizes=(784, 16, 2)):
    return ta.dense_autoencoder(sizes, rng=np.random.default_rng(seed))


def checkpoint_bytes(model=None, optimizer=True, extra=None):
    """The bytes of a real checkpoint of a small model (with Adam state)."""
    model = model or small_model()
    arrays = {f"param/{n}": p for n, p, _ in model.parameters()}
    config = {"format": "tinyae-checkpoint", "format_version": 1, "tinyae_version": "0.1.0",
              "model": model.config(), "optimizer": None, "extra": extra or {}}
    if optimizer:
        opt = ta.Adam(model.parameters())
        config["optimizer"] = {"type": "Adam", "lr": opt.lr}
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in opt.state_dict().items()})
    return npz_bytes(config, arrays)


def npz_bytes(config, arrays, compress=False):
    """An .npz archive of ``arrays`` with ``config`` (a dict, or raw JSON text) as __config__."""
    text = config if isinstance(config, str) else json.dumps(config)
    buf = _io.BytesIO()
    savez = np.savez_compressed if compress else np.savez
    savez(buf, **arrays, __config__=np.array(text))
    return buf.getvalue()


def read_npz(data):
    """(config dict, arrays) of checkpoint bytes."""
    with np.load(_io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("__config__"))), arrays


def huge_dense_checkpoint(width=30000):
    """An 11 KB file whose config says Dense(30000, 30000): building it would take 7 GB."""
    def dense(d, h):
        return {"type": "Dense", "in_features": d, "out_features": h, "bias": True, "init": "he"}
    config, _ = read_npz(checkpoint_bytes(optimizer=False))
    config["model"]["encoder"] = {"type": "Sequential", "layers": [
        dense(width, width), {"type": "ReLU"}, dense(width, 2)]}
    config["model"]["decoder"] = {"type": "Sequential", "layers": [
        dense(2, width), {"type": "ReLU"}, dense(width, width), {"type": "Sigmoid"}]}
    rng = np.random.default_rng(0)
    return npz_bytes(config, {f"param/{k}": rng.random(300).astype(np.float32)
                              for k in ("encoder.0.W", "encoder.0.b", "decoder.2.W")})


def npy_header(shape, dtype="<f4"):
    """A .npy version 1.0 header for an array of ``shape`` (the data not included)."""
    d = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}) + " "
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode("latin1")


def inflating_checkpoint(n_bytes=400 << 20):
    """A ~1 MB deflated member that declares and inflates to ``n_bytes`` of float32 zeros."""
    config, arrays = read_npz(checkpoint_bytes(optimizer=False))
    del arrays["param/encoder.0.W"]
    buf = _io.BytesIO(npz_bytes(config, arrays))
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("param/encoder.0.W.npy", "w", force_zip64=True) as f:
            f.write(npy_header((n_bytes // 4,)))
            chunk = bytes(1 << 20)
            for _ in range(n_bytes >> 20):
                f.write(chunk)
    return buf.getvalue()


def lying_size_checkpoint():
    """A member whose zip entry declares the size its header implies but inflates far beyond."""
    config, arrays = read_npz(checkpoint_bytes(optimizer=False))
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key, arr in {**arrays, "__config__": np.array(json.dumps(config))}.items():
            payload = _io.BytesIO()
            np.lib.format.write_array(payload, arr, allow_pickle=False)
            body = payload.getvalue()
            if key == "param/encoder.0.W":
                body += bytes(50 << 20)                     # 50 MB more than declared
            z.writestr(key + ".npy", body)
    data = bytearray(buf.getvalue())
    honest = len(npy_header(arrays["param/encoder.0.W"].shape)) + arrays["param/encoder.0.W"].nbytes
    name = b"param/encoder.0.W.npy"
    central = data.find(b"PK\x01\x02")
    while central != -1:                                    # rewrite the declared size
        name_len = struct.unpack("<H", data[central + 28:central + 30])[0]
        if data[central + 46:central + 46 + name_len] == name:
            data[central + 24:central + 28] = struct.pack("<I", honest)
            local = struct.unpack("<I", data[central + 42:central + 46])[0]
            data[local + 22:local + 26] = struct.pack("<I", honest)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def set_zip_flags(data, encrypted=False, method=None):
    """Mark every entry as encrypted, or as compressed with an unknown ``method``."""
    data = bytearray(data)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = data.find(sig)
        while i != -1:
            if encrypted:
                data[i + flag_at] |= 1
            if method is not None:
                data[i + method_at:i + method_at + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    return bytes(data)


def with_config(change):
    """Checkpoint bytes of the small model after ``change(config)``."""
    config, arrays = read_npz(checkpoint_bytes())
    change(config)
    return npz_bytes(config, arrays)


def edit_config(path, change):
    """Rewrite the checkpoint at ``path`` after ``change(config)`` (as an old or altered file)."""
    with open(path, "rb") as f:
        config, arrays = read_npz(f.read())
    change(config)
    with open(path, "wb") as f:
        f.write(npz_bytes(config, arrays))


def with_array(key, value):
    config, arrays = read_npz(checkpoint_bytes())
    arrays[key] = value
    return npz_bytes(config, arrays)


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)
TEXT = b"epoch,loss\n1,0.5\n"
