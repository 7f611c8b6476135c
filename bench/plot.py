"""The failover picture: adverts of each router and the client's ping replies over time."""

from __future__ import annotations

from collections.abc import Sequence

from .failover import FailoverResult


def failover_png(results: Sequence[FailoverResult], path: str) -> bool:
    """One panel per daemon; False (no picture) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in results if r.timeline is not None and r.reps]
    if not shown:
        return False
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.2 * len(shown) + 0.6),
                             squeeze=False)
    for ax, result in zip(axes[:, 0], shown, strict=True):
        tl = result.timeline
        assert tl is not None
        rep = result.reps[0]
        t0 = rep.last_old  # time zero: the old master's last advert the LAN heard

        def rel(times: Sequence[float], base: float = t0) -> list[float]:
            return [1000 * (t - base) for t in times]

        rows = [("r1 adverts (old master)", tl.r1, "tab:blue", "|"),
                ("r2 adverts (backup)", tl.r2, "tab:orange", "|"),
                ("client ping replies", tl.replies, "tab:green", ".")]
        for y, (name, times, colour, marker) in enumerate(rows):
            ax.plot(rel(times), [y] * len(times), linestyle="none", marker=marker,
                    markersize=12 if marker == "|" else 4, color=colour, label=name)
        ax.axvline(1000 * (tl.cut - t0), color="red", linestyle="--", linewidth=1,
                   label="cut (port isolated)")
        ax.axvspan(0, 1000 * result.theory, color="grey", alpha=0.15,
                   label="theoretical Master_Down_Interval")
        ax.set_yticks(range(len(rows)), [r[0].split(" (")[0] for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        outage = f", ping outage {1000 * rep.outage:.0f} ms" if rep.outage is not None else ""
        ax.set_title(f"{result.impl}: VRRPv{result.version} {1000 * result.interval:g} ms "
                     f"adverts; gap {1000 * rep.gap:.1f} ms = {rep.ratio:.3f} x "
                     f"Master_Down_Interval{outage}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("ms after the old master's last advert (switch capture)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
