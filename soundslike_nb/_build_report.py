"""What a build tells people: its :class:`BuildReport` at the end, and the progress bar while
it analyses (in bytes of audio, so long files move it as much as they weigh)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .scan import FileEntry

__all__ = ["BuildReport", "advance", "progress_bar", "times"]


@dataclass
class BuildReport:
    """What a build did: counts, failures (path → reason), audio seconds embedded, wall time.
    ``moved`` counts files found at a new path with the same content: their rows (vectors and
    tags) were kept, not analysed again.

    Example:
        >>> BuildReport(embedded=2, audio_seconds=30.0, seconds=2.0).realtime_factor
        15.0
    """

    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0
    moved: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    #: Files that failed part way through decoding: what was read is in the library, and
    #: this says where it stopped and why (path → reason).
    partial: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people."""
        speed = (f" ({self.audio_seconds:.0f} s of audio, "
                 f"{times(self.realtime_factor)} real time)" if self.embedded else "")
        return (f"{self.embedded} embedded{speed}, {self.unchanged} unchanged, "
                f"{self.resumed} resumed, {self.moved} moved, {self.removed} removed, "
                f"{len(self.failures)} failed"
                + (f", {len(self.partial)} read in part" if self.partial else "")
                + f" in {self.seconds:.1f} s")


def times(factor: float) -> str:
    """``0.4x``, ``12x``: a speed factor people read at a glance.

    Example:
        >>> times(0.42), times(31.6)
        ('0.4x', '32x')
    """
    return f"{factor:.1f}x" if factor < 10 else f"{factor:.0f}x"


def progress_bar(todo: list[FileEntry], enabled: bool):
    """Progress in bytes of audio files, not in files: a batch of long tracks moves the bar as
    much as their size, so its rate and time left stay honest on libraries with long files."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=sum(entry.size for entry in todo), unit="B", unit_scale=True,
                unit_divisor=1024, desc=f"analysing {len(todo)} files", dynamic_ncols=True)


def advance(bar, paths: list[str], entries: dict[str, FileEntry], report: BuildReport,
            started: float, *, files_done: int, files_total: int) -> None:
    """Move ``bar`` (from :func:`progress_bar`; ``None``: nothing) past the files ``paths``."""
    if bar is None:
        return
    elapsed = max(time.perf_counter() - started, 1e-9)
    bar.set_postfix_str(f"{files_done}/{files_total} files, "
                        f"{times(report.audio_seconds / elapsed)} real time", refresh=False)
    bar.update(sum(entries[path].size for path in paths if path in entries))
