"""``tinyae explore``: one self-contained HTML page to walk a model's latent space.

The page holds the test set's codes on a 2-D map (coloured by digit) and the
decoder's weights, base64-encoded float32. A few dozen lines of JavaScript run
the decoder where the pointer is, the same maths as ``Dense.forward`` and the
activations:

    x <- act(x W + b)        layer by layer, from a code z to an image (784,)

No server, no network, no library: the file opens in any browser. For codes
wider than 2-D the map is the plane of the first two principal components of
the codes, and a point p on it decodes from z = mean + V p (V: (Z, 2)).
"""
import base64
import html
import json

import numpy as np

from ..io.checkpoint import atomic_write
from ..models.pca import PCA
from ..nn.conv import Conv2D, ConvTranspose2D, Flatten, Reshape
from ..models.vae import VariationalAutoencoder
from ..nn.layers import Dense, Sigmoid
from ..train.threads import batched
from .latent import latent_range


def _js(layer):
    """The activation's JavaScript expression of v (and a, its slope), when its class has one."""
    return vars(type(layer)).get("js")      # its own class's: a subclass may change the maths


def _b64(a):
    """Little-endian float32 bytes, base64: what JavaScript's Float32Array reads back."""
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode("ascii")


def decoder_spec(model):
    """The decoder as a JSON-ready list, one entry per layer the page runs: a Dense's
    {"in", "out", "W", "b"}; a convolution's {"conv": "Conv2D" or "ConvTranspose2D", "W",
    "b", its settings and the image size it reads}; an activation's {"act", "alpha"}.
    Reshape and Flatten keep a sample's numbers in the same (C, H, W) order: nothing to run."""
    spec, width = [], model.latent_width
    for layer in _page_layers(model):
        kind = type(layer)
        if kind is Dense:
            W = layer.params["W"]                                         # (in, out)
            b = layer.params.get("b", np.zeros(W.shape[1], W.dtype))
            spec.append({"in": W.shape[0], "out": W.shape[1], "W": _b64(W), "b": _b64(b)})
        elif kind in (Conv2D, ConvTranspose2D):
            spec.append(_conv_spec(layer, width))
        elif _js(layer):
            spec.append({"act": kind.__name__,
                         "alpha": float(getattr(layer, "negative_slope", 0.0))})
        elif kind not in (Reshape, Flatten):
            raise ValueError(f"tinyae explore runs Dense, Conv2D and ConvTranspose2D layers, "
                             f"Reshape, Flatten and activations whose class gives its "
                             f"JavaScript (js) in the browser; the decoder has a {kind.__name__}, "
                             "which the page cannot run")
        width = layer.output_width(width)
    return spec


def _page_layers(model):
    """The layers from a code to an image: the decoder's, and for a VAE, whose decoder ends
    in logits, the sigmoid its ``decode`` applies."""
    layers = list(getattr(model.decoder, "layers", [model.decoder]))
    return layers + [Sigmoid()] if isinstance(model, VariationalAutoencoder) else layers


def _conv_spec(layer, width):
    """A convolution for the page: weights, settings, and the (C, H, W) it reads."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    oph, opw = getattr(layer, "output_padding", (0, 0))
    _, out_h, out_w = layer.output_width(width)
    return {"conv": type(layer).__name__, "W": _b64(layer.params["W"]),
            "b": _b64(layer.params["b"]), "cin": layer.in_channels, "cout": layer.out_channels,
            "hin": width[1], "win": width[2], "hout": out_h, "wout": out_w,
            "kh": kh, "kw": kw, "sh": sh, "sw": sw, "ph": ph, "pw": pw, "oph": oph, "opw": opw}


def js_activations(model):
    """The ``ACT`` table of the page: each of the decoder's activations as a JavaScript
    function of (v, a), from its class's ``js`` expression."""
    kinds = {type(layer).__name__: _js(layer) for layer in _page_layers(model) if _js(layer)}
    return "\n".join(f"  {name}: (v, a) => ({js})," for name, js in sorted(kinds.items()))


def map_plane(Z):
    """Where each code sits on the 2-D map, and the way back from the map to a code.

    Returns (P, origin, V, note): map points P (N, 2) and the affine map
    z = origin + V p (origin (Z,), V (Z, 2)) that the page decodes from.
    """
    Z = np.asarray(Z, np.float64)
    width = Z.shape[1]
    if width == 2:
        return Z, np.zeros(2), np.eye(2), "The map shows the 2-D codes themselves (z1, z2)."
    if width == 1:
        return (np.column_stack([Z[:, 0], np.zeros(len(Z))]), np.zeros(1), np.array([[1.0, 0.0]]),
                "1-D codes: the horizontal axis is z1; the vertical position does not matter.")
    pca = PCA(2).fit(Z)
    return (pca.encode(Z), pca.mean, pca.components,
            f"{width}-D codes: the map is the plane of their first two principal components "
            f"(PC1, PC2); a point p on it decodes from z = mean + p1 v1 + p2 v2.")


def explorer_html(model, Z, labels, title="tinyae latent-space explorer"):
    """The page, as one string. Z: (N, latent) codes of the test set, labels: (N,) digits."""
    Z = np.asarray(Z)
    labels = np.asarray(labels).astype(np.int64)
    if Z.ndim != 2 or Z.shape[1] != model.latent_width or len(Z) != len(labels):
        raise ValueError(f"explorer_html wants codes (N, {model.latent_width}) and N labels; "
                         f"got {Z.shape} and {labels.shape}")
    side = int(round(np.sqrt(model.input_width)))
    if side * side != model.input_width:
        raise ValueError(f"the explorer draws square images, but the model's input width "
                         f"{model.input_width} is not a square number (784 = 28 x 28 for MNIST)")
    if not np.isfinite(Z).all():        # the page would draw nothing: say why instead
        raise ValueError(f"{int(np.sum(~np.isfinite(Z).all(axis=1))):,} of the {len(Z):,} codes "
                         "are NaN or infinite (the encoder's weights overflow on these images); "
                         "nothing was written")
    if not all(np.isfinite(p).all() for _, p, _ in model.decoder.parameters()):
        raise ValueError("the decoder's weights are not all finite; nothing was written")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"labels must be class numbers in 0..255 (digits 0-9), got "
                         f"{labels.min()}..{labels.max()}")
    P, origin, V, note = map_plane(Z)
    ranges = latent_range(P, 0.5, 99.5)                     # (2, 2): a few far codes may fall off
    for r in ranges:
        if not r[1] - r[0] > 1e-9:                          # a flat axis (1-D codes): give it room
            r += (-1.0, 1.0)
    outside = int(np.sum(np.any((P < ranges[:, 0]) | (P > ranges[:, 1]), axis=1)))
    data = {
        "decoder": decoder_spec(model),
        "points": _b64(P), "labels": base64.b64encode(labels.astype(np.uint8).tobytes()).decode(),
        "origin": origin.tolist(), "V": V.tolist(), "ranges": ranges.tolist(),
        "axes": {1: ["z1", ""], 2: ["z1", "z2"]}.get(Z.shape[1], ["PC1", "PC2"]),
        "note": note, "outside": outside, "n": len(P), "side": side,
    }
    # "</" cannot end the <script> early once escaped; the JSON itself is unchanged.
    payload = json.dumps(data).replace("</", "<\\/")
    return (PAGE.replace("__ACT__", js_activations(model))
                .replace("__TITLE__", html.escape(title))
                .replace("__NOTE__", html.escape(note))
                .replace("__DATA__", payload))


def write_explorer(model, X, labels, path, title="tinyae latent-space explorer"):
    """Encode X, then write the page to ``path`` (atomically). Returns the page's size in bytes."""
    with np.errstate(over="ignore", invalid="ignore"):     # non-finite codes are refused
        Z = batched(model.encode, X)
    page = explorer_html(model, Z, labels, title).encode("utf-8")
    atomic_write(path, lambda f: f.write(page))
    return len(page)


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>__TITLE__</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
 h1 { font-size: 18px; margin: 0 0 4px; }
 .row { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
 canvas { border: 1px solid #ccc; }
 #map { cursor: crosshair; }
 #side { width: 240px; }
 #digit { image-rendering: pixelated; width: 224px; height: 224px; }
 #strip { image-rendering: pixelated; width: 560px; height: 56px; display: block; margin-top: 8px; }
 .legend span { display: inline-block; width: 22px; text-align: center; color: #fff; margin-right: 2px; border-radius: 3px; }
 .note { color: #555; max-width: 900px; }
 code { background: #f3f3f3; padding: 0 3px; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p class="note">Each dot is a test image's code, coloured by its digit. Move the pointer over the
map: the decoder runs in this page on that point and draws the digit on the right. Click two
points to play the straight path between them, Z<sub>t</sub> = Z<sub>1</sub> (1 &minus; t) + Z<sub>2</sub> t.
<br>__NOTE__<span id="clipnote"></span></p>
<div class="legend" id="legend"></div>
<div class="row">
 <canvas id="map" width="560" height="560"></canvas>
 <div id="side">
  <canvas id="digit" width="28" height="28"></canvas>
  <div id="where">point: &ndash;</div>
  <div id="path">click a first point</div>
 </div>
</div>
<canvas id="strip" width="280" height="28"></canvas>
<div class="note">The path in ten steps, from the first click to the second.</div>
<script id="tinyae-data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("tinyae-data").textContent);
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];   // matplotlib's tab10

function bytes(b64) { const s = atob(b64), u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u; }
const floats = b64 => new Float32Array(bytes(b64).buffer);
const layers = D.decoder.map(l => l.act ? l : { ...l, W: floats(l.W), b: floats(l.b) });
const P = floats(D.points), labels = bytes(D.labels);

// The decoder, as in tinyae.nn.layers: Dense y = x W + b with W stored (in, out), then the activation.
function dense(x, l) {
  const y = Float64Array.from(l.b);
  for (let i = 0; i < l.in; i++) {
    const xi = x[i]; if (xi === 0) continue;              // ReLU zeros skip a whole row of W
    const row = l.W.subarray(i * l.out, (i + 1) * l.out);
    for (let j = 0; j < l.out; j++) y[j] += xi * row[j];
  }
  return y;
}
const ACT = {                                               // from each class's js
__ACT__
};
// Convolutions, as in tinyae.nn.conv, on one sample stored (C, H, W) row by row:
// Conv2D  y[o, i, j] = b[o] + sum_{c,u,v} x[c, i sh - ph + u, j sw - pw + v] W[o, c, u, v]
// ConvTranspose2D: each x[c, i, j] adds x W[c, o, u, v] to y[o, i sh - ph + u, j sw - pw + v]
function conv(x, l) {
  const y = new Float64Array(l.cout * l.hout * l.wout), hw = l.hout * l.wout;
  for (let o = 0; o < l.cout; o++) y.fill(l.b[o], o * hw, (o + 1) * hw);
  const t = l.conv === "ConvTranspose2D";
  for (let c = 0; c < l.cin; c++)
    for (let o = 0; o < l.cout; o++) {
      const w = t ? (c * l.cout + o) * l.kh * l.kw : (o * l.cin + c) * l.kh * l.kw;
      for (let u = 0; u < l.kh; u++) for (let v = 0; v < l.kw; v++) {
        const k = l.W[w + u * l.kw + v];
        if (k === 0) continue;
        const [H, Wd] = t ? [l.hin, l.win] : [l.hout, l.wout];   // the loops run over these
        for (let i = 0; i < H; i++) {
          const r = i * l.sh - l.ph + u;
          if (r < 0 || r >= (t ? l.hout : l.hin)) continue;
          for (let j = 0; j < Wd; j++) {
            const q = j * l.sw - l.pw + v;
            if (q < 0 || q >= (t ? l.wout : l.win)) continue;
            if (t) y[(o * l.hout + r) * l.wout + q] += x[(c * l.hin + i) * l.win + j] * k;
            else y[(o * l.hout + i) * l.wout + j] += x[(c * l.hin + r) * l.win + q] * k;
          }
        }
      }
    }
  return y;
}
function decodeCode(z) {                                    // z: the full code (latent width)
  let x = Float64Array.from(z);
  for (const l of layers) {
    if (l.conv) { x = conv(x, l); continue; }
    if (!l.act) { x = dense(x, l); continue; }
    const a = l.alpha, f = ACT[l.act];
    for (let j = 0; j < x.length; j++) x[j] = f(x[j], a);
  }
  return x;
}
function codeAt(p1, p2) {                                    // z = origin + V p
  return D.origin.map((o, k) => o + D.V[k][0] * p1 + D.V[k][1] * p2);
}

// Map coordinates <-> canvas pixels.
const map = document.getElementById("map"), ctx = map.getContext("2d"), M = 36;
const [[x0, x1], [y0, y1]] = D.ranges, W = map.width - M - 8, H = map.height - M - 8;
const toPx = (x, y) => [M + (x - x0) / (x1 - x0) * W, 8 + (y1 - y) / (y1 - y0) * H];
const fromPx = (u, v) => [x0 + (u - M) / W * (x1 - x0), y1 - (v - 8) / H * (y1 - y0)];

const background = document.createElement("canvas");
background.width = map.width; background.height = map.height;
(function drawPoints() {
  const g = background.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, map.width, map.height);
  g.globalAlpha = 0.55;
  for (let k = 0; k < D.n; k++) {
    const [u, v] = toPx(P[2 * k], P[2 * k + 1]);
    if (u < M || u > M + W || v < 8 || v > 8 + H) continue;
    g.fillStyle = COLORS[labels[k] % 10]; g.fillRect(u - 1, v - 1, 2.2, 2.2);
  }
  g.globalAlpha = 1; g.strokeStyle = "#888"; g.strokeRect(M, 8, W, H);
  g.fillStyle = "#333"; g.font = "12px sans-serif";
  g.fillText(D.axes[0], M + W / 2, map.height - 8);
  g.save(); g.translate(12, 8 + H / 2); g.rotate(-Math.PI / 2); g.fillText(D.axes[1], 0, 0); g.restore();
  g.fillText(x0.toFixed(1), M, 8 + H + 14); g.fillText(x1.toFixed(1), M + W - 24, 8 + H + 14);
  g.fillText(y1.toFixed(1), 2, 18); g.fillText(y0.toFixed(1), 2, 8 + H);
})();

const digit = document.getElementById("digit"), dctx = digit.getContext("2d"), S = D.side;
function paint(c, pixels, col) {                           // one decoded image into a canvas
  const img = c.createImageData(S, S);
  for (let i = 0; i < S * S; i++) {
    const g = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
    img.data.set([g, g, g, 255], 4 * i);
  }
  c.putImageData(img, col * S, 0);
}

// What the tests read: window.tinyae.lastDecoded after a hover, or decodeAt(p1, p2) directly.
const api = window.tinyae = { lastPoint: null, lastCode: null, lastDecoded: null, ends: [],
  playing: false, ready: false };
api.clientXY = function (p1, p2) {                         // a map point -> where to put the mouse
  const r = map.getBoundingClientRect(), [u, v] = toPx(p1, p2);
  return [r.left + u * r.width / map.width, r.top + v * r.height / map.height];
};
api.decodeAt = function (p1, p2) {
  const z = codeAt(p1, p2), x = decodeCode(z);
  api.lastPoint = [p1, p2]; api.lastCode = z; api.lastDecoded = Array.from(x);
  paint(dctx, x, 0);
  document.getElementById("where").textContent =
    `point (${p1.toFixed(3)}, ${p2.toFixed(3)})` + (D.V.length > 2 ? ` in the PC plane` : "");
  return api.lastDecoded;
};

let ends = [], marker = null, timer = null;
function redraw() {
  ctx.drawImage(background, 0, 0);
  ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
  if (ends.length === 2) {
    ctx.beginPath(); ctx.moveTo(...toPx(...ends[0])); ctx.lineTo(...toPx(...ends[1])); ctx.stroke();
  }
  for (const e of ends) { ctx.beginPath(); ctx.arc(...toPx(...e), 5, 0, 2 * Math.PI); ctx.stroke(); }
  if (marker) { ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(...toPx(...marker), 4, 0, 2 * Math.PI); ctx.fill(); }
}
function pointer(ev) {
  const r = map.getBoundingClientRect();
  return fromPx((ev.clientX - r.left) * map.width / r.width, (ev.clientY - r.top) * map.height / r.height);
}
map.addEventListener("mousemove", ev => {
  if (timer) return;                                        // an interpolation is playing
  marker = pointer(ev); api.decodeAt(...marker); redraw();
});
map.addEventListener("click", ev => {
  if (timer) { clearInterval(timer); timer = null; api.playing = false; }
  ends = ends.length === 2 ? [pointer(ev)] : [...ends, pointer(ev)];
  const status = document.getElementById("path");
  api.ends = ends;
  if (ends.length === 1) { status.textContent = "click a second point"; redraw(); return; }
  const [a, b] = ends, steps = 10, frames = 40;
  const strip = document.getElementById("strip").getContext("2d");
  for (let s = 0; s < steps; s++) {                         // the path as a strip of 10 images
    const t = s / (steps - 1);
    paint(strip, decodeCode(codeAt(a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t)), s);
  }
  status.textContent = "playing Z_t = Z_1 (1 - t) + Z_2 t; click again to start a new path";
  let f = 0;
  api.playing = true;
  timer = setInterval(() => {                               // and played in the big view
    const t = (f % (2 * frames)) / frames, u = t <= 1 ? t : 2 - t;   // there and back
    marker = [a[0] * (1 - u) + b[0] * u, a[1] * (1 - u) + b[1] * u];
    api.decodeAt(...marker); redraw(); f++;
    if (f > 4 * frames) { clearInterval(timer); timer = null; api.playing = false; }
  }, 40);
});

document.getElementById("legend").innerHTML =
  COLORS.map((c, k) => `<span style="background:${c}">${k}</span>`).join("");
if (D.outside > 0) document.getElementById("clipnote").textContent =
  ` The axes span the 0.5th to 99.5th percentiles of the codes (plus a margin): ` +
  `${D.outside.toLocaleString("en")} of ${D.n.toLocaleString("en")} codes lie outside and are not drawn.`;
redraw();
api.decodeAt((x0 + x1) / 2, (y0 + y1) / 2);
api.ready = true;
</script>
</body></html>
"""
