"""The report's glossary, and the link from each term's first use on a page to its entry.

Definitions follow the code that computes the numbers (:mod:`xai.fairness`,
:mod:`xai.explain.sanity`), not a textbook, so the glossary says what this page's number is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup

__all__ = ["GLOSSARY", "Term", "link_terms"]


@dataclass(frozen=True)
class Term:
    """One glossary entry: its anchor, heading, definition and the phrases that use it on a page."""

    slug: str
    name: str
    definition: str
    phrases: tuple[str, ...]

    @property
    def anchor(self) -> str:
        """The entry's HTML id."""
        return f"term-{self.slug}"


GLOSSARY: tuple[Term, ...] = (
    Term("attribution", "Attribution",
         "How much each input (pixel, column, word) moved the explained output, by one explainer. Signed "
         "maps say which way; absolute ones (|x|) only how much.", ("attribution",)),
    Term("selection-rate", "Selection rate",
         "Share of a group's rows the model assigns the positive class.", ("selection rate",)),
    Term("demographic-parity", "Demographic parity",
         "Equal selection rates across groups. Its difference is the largest minus the smallest group "
         "selection rate (0 = parity); its ratio is the smallest over the largest.",
         ("demographic parity", "demographic_parity")),
    Term("equalized-odds", "Equalized odds",
         "Equal true-positive and false-positive rates across groups (Hardt et al. 2016). Its difference is "
         "the larger of the two gaps between groups (0 = equal odds).", ("equalized odds", "equalized_odds")),
    Term("four-fifths-rule", "Four-fifths rule",
         "A screening rule from US employment guidance: a group whose selection rate is below 80% of the most "
         "selected group's shows adverse impact. Fails when the selection-rate ratio is under 0.8.",
         ("four-fifths rule", "four-fifths")),
    Term("calibration-error", "Calibration error",
         "Expected calibration error: the average gap between the model's predicted probability and the "
         "observed share of positives, over probability bins, within a group.", ("calibration error",)),
    Term("flip-rate", "Flip rate",
         "Counterfactual probe: the share of rows whose decision changes when only the sensitive attribute is "
         "swapped to another level (0 = the attribute itself never decides).", ("flip rate", "flip_rate")),
    Term("proxy-strength", "Proxy strength",
         "How well the other inputs reveal a sensitive attribute: (balanced accuracy of a linear probe - "
         "chance) / (1 - chance); 0 = no proxy, 1 = a perfect one.", ("proxy strength", "proxy_strength")),
    Term("nmi", "NMI",
         "Normalised mutual information between one column and the sensitive attribute (0 = independent, "
         "1 = one determines the other).", ("NMI", "normalised mutual information")),
    Term("bootstrap-interval", "Bootstrap interval",
         "The range that holds the given share (e.g. 95%) of a metric's values when the rows are resampled "
         "with replacement many times: how much the number could move with other data of the same kind.",
         ("bootstrap interval", "bootstrap intervals")),
    Term("completeness-gap", "Completeness gap",
         "Integrated Gradients: the attributions of a sample should add up to the output's change from the "
         "baseline; the gap is the difference (near 0 = enough integration steps).",
         ("completeness gap", "convergence_delta")),
    Term("question-share", "Question share",
         "Multimodal models: the question words' part of a sample's total |attribution| (words and image); "
         "near 1 the answer comes from the question alone.", ("question share", "question_share")),
    Term("deletion-insertion-auc", "Deletion / insertion AUC",
         "Sanity check of a map: remove (or insert) input features in the map's order and track the explained "
         "probability; the area under that curve, compared with a random order. A faithful map deletes faster "
         "(lower deletion AUC) and inserts faster (higher insertion AUC) than random.",
         ("deletion AUC", "insertion AUC", "Deletion/insertion", "deletion_auc")),
    Term("mprt", "MPRT",
         "Model parameter randomisation test (Adebayo et al. 2018): re-initialise the layers from the output "
         "down and compare the maps (rank correlation, SSIM). A map that stays the same ignores the weights.",
         ("MPRT",)),
    Term("infidelity", "Infidelity",
         "Expected squared error between the attribution-predicted and the actual output change under small "
         "random perturbations (Yeh et al. 2019); lower is better.", ("infidelity",)),
    Term("max-sensitivity", "Max-sensitivity",
         "The largest change of a map when the input moves slightly (Yeh et al. 2019); lower is more stable.",
         ("max-sensitivity",)),
)

_SKIP = frozenset({"a", "code", "script", "style", "title", "svg", "head", "h1", "h2", "h3", "summary"})
_TOKEN = re.compile(r"<(/?)([a-zA-Z0-9]*)[^>]*>|[^<]+|<")


def link_terms(html: str, glossary: tuple[Term, ...] = GLOSSARY) -> str:
    """Link the first use of each glossary term in ``html``'s text to its entry (``#term-...``).

    Only text outside links, code, headings, table headers, SVG and the glossary itself is
    touched; matching ignores case and needs word boundaries. ``html`` is already escaped
    page text, and the phrases are plain words, so wrapping them adds no user content.
    """
    pending = list(glossary)
    patterns = {t.slug: re.compile(r"(?<![\w#-])(" + "|".join(re.escape(p) for p in
                                                              sorted(t.phrases, key=len, reverse=True))
                                   + r")(?![\w-])", re.IGNORECASE) for t in glossary}
    stop = html.find('id="glossary"')
    out: list[str] = []
    open_tags: list[str] = []
    for match in _TOKEN.finditer(html):
        piece = match.group(0)
        if piece.startswith("<"):  # a tag (or a doctype, a comment, a stray "<": kept as they are)
            name = (match.group(2) or "").lower()
            if match.group(1):
                if name in open_tags:
                    del open_tags[len(open_tags) - 1 - open_tags[::-1].index(name)]
            elif name in _SKIP and not piece.endswith("/>"):
                open_tags.append(name)
            out.append(piece)
            continue
        if (stop >= 0 and match.start() >= stop) or any(t in _SKIP for t in open_tags) or not pending:
            out.append(piece)
            continue
        hits = []  # (start, end, term): each pending term's first match in this text
        for term in pending:
            found = patterns[term.slug].search(piece)
            if found is not None:
                hits.append((found.start(), found.end(), term))
        taken, end = [], -1
        for start, stop_at, term in sorted(hits, key=lambda h: h[0]):
            if start >= end:  # overlapping phrases: the earlier one wins, the other waits for its next use
                taken.append((start, stop_at, term))
                end = stop_at
        for start, stop_at, term in reversed(taken):
            piece = f'{piece[:start]}<a class="term" href="#{term.anchor}">{piece[start:stop_at]}</a>{piece[stop_at:]}'
            pending.remove(term)
        out.append(piece)
    return "".join(out)


def glossary_html(glossary: tuple[Term, ...] = GLOSSARY) -> Markup:
    """The glossary as a definition list (fixed text, no user strings)."""
    items = "".join(f'<dt id="{t.anchor}">{t.name}</dt><dd>{t.definition}</dd>' for t in glossary)
    return Markup(f'<dl class="glossary">{items}</dl>')  # noqa: S704  (module constants only)
