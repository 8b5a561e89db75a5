"""What a person sees during long work (a download, ``fit``): a bar where it can redraw
itself, and one line per finished step of work (the only output in a log file or pipe)."""
import sys
from importlib.util import find_spec


def interactive():
    """True when a progress bar can redraw itself for someone watching: stderr is a
    terminal, or this is a live Jupyter notebook with ipywidgets (without them tqdm
    would print every frame into the notebook).

    A notebook executed without a person at it (nbclient, ``jupyter nbconvert
    --execute``, ``jupytext --execute``, papermill) gets no bar: nobody watches it,
    and each bar would stay in the saved notebook as an empty widget box. Those
    runners send their cells with ``allow_stdin=False`` (they cannot answer
    ``input()``); a live front end (JupyterLab, Notebook, VS Code) sends True.
    """
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if not (shell is not None and "IPKernelApp" in getattr(shell, "config", {})
            and find_spec("ipywidgets") is not None):
        return False
    try:                                    # the request that runs this cell (ipykernel >= 6)
        request = shell.kernel.get_parent()
    except Exception:                       # an older or unusual kernel: assume a person
        return True
    return bool((request or {}).get("content", {}).get("allow_stdin", True))


class Progress:
    """The bar of each epoch (tqdm; a widget in Jupyter) and the line after it.

    ``what`` names the epochs in the bar ("epoch", "RBM 1/4 epoch").
    """

    def __init__(self, show, epochs, steps, what="epoch"):
        self.show, self.epochs, self.steps, self.what = show, epochs, steps, what
        self.live = show and interactive()
        if self.live:       # tqdm only when a bar is drawn: a log needs none of it
            from tqdm.auto import tqdm          # a widget in Jupyter, text frames on a terminal
            self.tqdm = tqdm
        self.bar = None

    def start(self, epoch):
        if self.live:
            self.bar = self.tqdm(total=self.steps, desc=f"{self.what} {epoch}/{self.epochs}",
                                 leave=False, unit="step")

    def step(self, loss=None, threads=None):
        """One step done; ``loss`` and ``threads``, when given, shown beside the bar."""
        if self.bar is not None:
            self.bar.update()
            shown = {"loss": None if loss is None else f"{loss:.4f}", "threads": threads}
            shown = {k: v for k, v in shown.items() if v is not None}
            if shown:
                self.bar.set_postfix(shown, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def epoch(self, record):
        """One line for a finished epoch: its loss (and terms), validation loss, time, threads."""
        if not self.show:
            return
        terms = (f" = reconstruction {record.reconstruction:.5f} + penalty "
                 f"{record.penalty:.5f}" if record.penalty else "")
        val = "" if record.val_loss is None else f"  val_loss {record.val_loss:.5f}"
        threads = f"{record.threads} BLAS thread{'s' * (record.threads != 1)}"
        threads += ", MKL" if record.matmul == "mkl" else ""       # the optional extra at work
        self.line(f"epoch {record.epoch}/{self.epochs}  loss {record.loss:.5f}{terms}{val}  "
                  f"({record.seconds:.1f} s, {threads})")

    def line(self, line):
        """A line that stays: above a live bar, else on stderr (a log gets only these)."""
        if not self.show:
            return
        if self.live:
            self.tqdm.write(line, file=sys.stderr)      # above a bar, not through it
        else:
            print(line, file=sys.stderr, flush=True)
