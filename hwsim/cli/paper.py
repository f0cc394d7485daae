"""Commands about the HairNet paper itself: its appendix reproduced, its claims as numbers."""

from __future__ import annotations

from pathlib import Path

import click

from hwsim import files
from hwsim.cli.common import console, output_option, reports_input_errors, require_suffix, table_options


@click.command()
@output_option("Also write the row-by-row comparison as CSV.")
@table_options
@reports_input_errors
def reproduce(output: Path | None, wide: bool, columns: tuple[str, ...]) -> None:
    """The paper's appendix row by row beside hwsim's, then its errata corrected one at a time.

    --columns picks columns of the row-by-row table (row, paper_layer, hwsim_layer, paper_total_time_s, ...).

    \b
    hwsim reproduce                       # the columns that fit the terminal
    hwsim reproduce --wide -o rows.csv    # every column, and the rows as CSV
    """
    from hwsim.report.studies import render_reproduction
    from hwsim.report.terminal import View
    from hwsim.studies import reproduce as reproduction

    require_suffix(output, (".csv",), "the comparison is written as CSV")
    comparison = reproduction.compare_appendix()
    render_reproduction(
        comparison, reproduction.errata_chain(), reproduction.beyond_the_paper(), console(), View(wide, columns)
    )
    if output:
        files.write_atomically(output, comparison.rows.to_csv(index=False))
        click.echo(f"wrote {output}")


@click.command()
@output_option("Also write the claims as Markdown (.md).")
@reports_input_errors
def claims(output: Path | None) -> None:
    """The paper's claims as numbers: HairNet's share of AlexNet's parameters, depthwise separable
    vs standard convolution stage by stage against 1/N + 1/K^2, and the dense head's parameter ratio.

    \b
    hwsim claims                 # the claims beside the numbers hwsim computes
    hwsim claims -o claims.md    # also as Markdown (docs/claims.md is made this way)
    """
    from hwsim.studies import claims as paper_claims

    require_suffix(output, (".md", ".markdown"), "claims are written as Markdown")
    scalars, stages = paper_claims.all_claims()
    paper_claims.render(scalars, stages, console())
    if output:
        files.write_atomically(output, paper_claims.to_markdown(scalars, stages))
        click.echo(f"wrote {output}")
