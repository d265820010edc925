"""Every page, README section and JSON the scripts write, one module per page.

Generated text sits between ``<!-- name:start -->`` and ``<!-- name:end -->`` markers
(:mod:`~inference.evaluation.report.markdown`), so that a script rewrites its own section
and leaves the rest of a page alone.
"""

from inference.evaluation.report.contenders import contenders_page, contenders_seeds_page
from inference.evaluation.report.markdown import (
    between_markers,
    mean_sd,
    pct,
    plain_json,
    replace_between_markers,
    section_page,
    write_json,
)
from inference.evaluation.report.ood import ood_page, ood_winners
from inference.evaluation.report.peers import compile_lines, peers_page
from inference.evaluation.report.reliability import mutation_section, reliability_section
from inference.evaluation.report.results import (
    PAGE_SECTIONS,
    headline_rows,
    headline_table,
    print_evaluation,
    publish_evaluation,
    publish_readme_table,
    results_page,
)
from inference.evaluation.report.serving import drawn_section, processes_section, scale_section, serving_section, soak_section
from inference.evaluation.report.speed import publish_speed, speed_rows, speed_section
from inference.evaluation.report.study import near_study_page, study_page

__all__ = [
    "PAGE_SECTIONS",
    "between_markers",
    "compile_lines",
    "contenders_page",
    "contenders_seeds_page",
    "drawn_section",
    "headline_rows",
    "headline_table",
    "mean_sd",
    "mutation_section",
    "near_study_page",
    "ood_page",
    "ood_winners",
    "pct",
    "peers_page",
    "plain_json",
    "print_evaluation",
    "publish_speed",
    "processes_section",
    "publish_evaluation",
    "publish_readme_table",
    "reliability_section",
    "replace_between_markers",
    "results_page",
    "scale_section",
    "section_page",
    "serving_section",
    "soak_section",
    "speed_rows",
    "speed_section",
    "study_page",
    "write_json",
]
