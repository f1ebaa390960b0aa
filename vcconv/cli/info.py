"""`vcconv info`: device, versions, models."""

from __future__ import annotations

from vcconv.cli import app, console


@app.command("info")
def info() -> None:
    """Show the compute device, library versions and the models in pretrained/."""
    from rich.table import Table

    from vcconv.system import system_info

    facts = system_info()
    table = Table(show_header=False, box=None)
    for key, value in facts.items():
        if key != "models":
            table.add_row(f"[bold]{key}", str(value))
    console.print(table)
    models = facts["models"]
    mt = Table("model", "kind", "file")
    for m in models:
        mt.add_row(m["name"], m["kind"], m["path"])
    mt.add_row("world", "world (built-in DSP, no weights)", "-")  # vcconv.dsp.world_vc
    if not models:
        console.print("no models in pretrained/")
    console.print(mt)
