"""What a training run records: one ``EpochRecord`` per epoch, in a ``History``."""
from dataclasses import asdict, dataclass, field


@dataclass
class EpochRecord:
    """One epoch: ``loss`` = ``reconstruction`` + ``penalty`` (means over the training images).

    ``val_loss`` is the same sum on the validation images (after the epoch's last step), so
    the two curves compare; ``val_penalty`` is its penalty term (0 for a model without
    one). Records saved before tinyae counted the penalty in ``val_loss`` have
    ``val_penalty`` None, as do epochs without validation.
    """
    epoch: int
    loss: float
    val_loss: float | None
    seconds: float
    lr: float                           # the lr of the epoch's last step
    threads: int | None = None      # BLAS threads at the end of the epoch (tinyae.train.threads)
    reconstruction: float | None = None        # None in records saved before the split
    penalty: float = 0.0
    step_lr: list = field(default_factory=list)     # the lr of each step of the epoch
    val_penalty: float | None = None
    matmul: str | None = None       # the fast path's matmul library ("numpy", "mkl"); None: plain

    @property
    def whole_val_loss(self):
        """``val_loss`` when it holds reconstruction + penalty, else None (no validation, or
        an older record of a model with a penalty: its val_loss is the reconstruction alone)."""
        return self.val_loss if self.val_penalty is not None or not self.penalty else None

    def __post_init__(self):
        if self.reconstruction is None:
            self.reconstruction = self.loss - self.penalty


@dataclass
class History:
    """Per-epoch records; ``stopped`` says why training ended early, if it did."""
    records: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def loss(self):
        return [r.loss for r in self.records]

    @property
    def val_loss(self):
        return [r.val_loss for r in self.records]

    def to_dict(self):
        return {"records": [asdict(r) for r in self.records], "stopped": self.stopped}

    @classmethod
    def from_dict(cls, d):
        return cls([EpochRecord(**r) for r in d.get("records", [])], d.get("stopped"))

    def to_csv(self):
        lines = ["epoch,loss,val_loss,seconds,lr,reconstruction,penalty,threads,val_penalty"]
        for r in self.records:
            val = "" if r.val_loss is None else f"{r.val_loss:.8g}"
            val_penalty = "" if r.val_penalty is None else f"{r.val_penalty:.8g}"
            threads = "" if r.threads is None else r.threads
            lines.append(f"{r.epoch},{r.loss:.8g},{val},{r.seconds:.4f},{r.lr:.6g},"
                         f"{r.reconstruction:.8g},{r.penalty:.8g},{threads},{val_penalty}")
        return "\n".join(lines) + "\n"



def comparable_val_losses(records):
    """Each record's ``whole_val_loss`` that is not None: the ones a new epoch's compares with
    (an older record's reconstruction alone would be lower than today's sums)."""
    return [r.whole_val_loss for r in records if r.whole_val_loss is not None]
