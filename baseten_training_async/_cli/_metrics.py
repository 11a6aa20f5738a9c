"""``jobs metrics``: a table of the latest values, ``--json``, or a terminal chart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .. import JobMetrics, MetricPoint
from ._output import Output, human_bytes, one_line, short_time

__all__ = ["sparkline", "show_metrics"]

_BARS: Final = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int, *, top: float | None = None) -> str:
    """Values as a one-line bar chart of at most ``width`` characters.

    Longer series are averaged into ``width`` buckets; bars scale from 0 to
    ``top`` (default: the largest value).

    Args:
        values: The series, oldest first.
        width: Characters available.
        top: The value of a full bar.

    Returns:
        The chart ("" for no values).
    """
    if not values or width < 1:
        return ""
    if len(values) > width:
        buckets: list[float] = []
        for i in range(width):
            chunk = values[i * len(values) // width : (i + 1) * len(values) // width]
            buckets.append(sum(chunk) / len(chunk))
        values = buckets
    peak = top if top is not None and top > 0 else max(max(values), 1e-12)
    levels = len(_BARS) - 1
    return "".join(_BARS[max(0, min(levels, round(v / peak * levels)))] for v in values)


def _series(
    pairs: dict[str, list[MetricPoint]], prefix: str, scale: float = 1.0
) -> list[tuple[str, list[float]]]:
    return [
        (f"{prefix} {one_line(k)}", [p.value * scale for p in v]) for k, v in sorted(pairs.items())
    ]


def show_metrics(out: Output, metrics: JobMetrics, *, chart: bool, width: int) -> None:
    """Print a job's metrics.

    Args:
        out: Where to print.
        metrics: The metrics.
        chart: Draw each series as a bar chart instead of listing the latest values.
        width: Chart width in characters.
    """
    if out.json_mode:
        out.json(metrics)
        return
    percent: list[tuple[str, list[float]]] = [
        *_series(metrics.gpu_utilization, "GPU util %", 100.0),  # the API sends fractions
    ]
    cpu = ("CPU cores", [p.value for p in metrics.cpu_usage])
    memory: list[tuple[str, list[float]]] = [
        *_series(metrics.gpu_memory_usage_bytes, "GPU mem"),
        ("CPU mem", [p.value for p in metrics.cpu_memory_usage_bytes]),
        ("disk", [p.value for p in metrics.ephemeral_storage.usage_bytes]),
    ]
    points = metrics.cpu_usage or next(iter(metrics.gpu_utilization.values()), [])
    span = (
        f"{short_time(points[0].timestamp)} .. {short_time(points[-1].timestamp)}" if points else ""
    )
    title = f"job {one_line(metrics.training_job.id)} {span}".rstrip()
    if not chart:
        rows = []
        for name, values in [*percent, cpu]:
            if values:
                rows.append([name, f"{values[-1]:.1f}", f"{max(values):.1f}", str(len(values))])
        for name, values in memory:
            if values:
                rows.append(
                    [name, human_bytes(values[-1]), human_bytes(max(values)), str(len(values))]
                )
        out.table(("SERIES", "LATEST", "PEAK", "SAMPLES"), rows, title=title)
        return
    out.line(title)
    label_width = max(len(name) for name, _ in [*percent, cpu, *memory])
    for name, values in percent:
        if values:
            out.line(
                f"{name:<{label_width}}  {sparkline(values, width, top=100)}  {values[-1]:.0f}%"
            )
    if cpu[1]:
        out.line(f"{cpu[0]:<{label_width}}  {sparkline(cpu[1], width)}  {cpu[1][-1]:.1f}")
    for name, values in memory:
        if values:
            out.line(
                f"{name:<{label_width}}  {sparkline(values, width)}  {human_bytes(values[-1])}"
            )
