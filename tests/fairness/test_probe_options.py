"""Every probe's options are one typed pydantic model: unknown keys and bad values are one-line errors naming them."""

from __future__ import annotations

import pytest

from xai.errors import DataError
from xai.fairness import PROBES
from xai.fairness._base import ProbeOptions


@pytest.mark.parametrize("name", PROBES.names())
def test_every_probe_has_typed_options_and_capability_flags(name):
    probe = PROBES.get(name)
    assert issubclass(probe.Options, ProbeOptions) and "sensitive" in probe.Options.model_fields
    assert probe.Options.model_config["extra"] == "forbid" and probe.Options.model_config["frozen"]
    # the old hand-kept ClassVars are gone: capabilities are the one source
    assert not hasattr(probe, "tasks") and not hasattr(probe, "needs_sensitive")
    described = probe.describe()
    assert set(described["options"]) == set(probe.Options.model_fields)
    with pytest.raises(DataError, match=rf"^{name}: unknown option 'bogus'; it takes sensitive"):
        probe.parse_options({"bogus": 1})


@pytest.mark.parametrize(("name", "needs_sensitive", "tasks"), [
    ("sample-distribution", False, None),
    ("weat", False, {"embedding"}),
    ("direct-bias", False, {"embedding"}),
    ("mitigation", True, {"binary-classification"}),
    ("proxy", True, {"classification", "binary-classification"}),
])
def test_capabilities_replace_the_old_class_flags(name, needs_sensitive, tasks):
    capabilities = PROBES.get(name).capabilities
    assert capabilities.needs_sensitive is needs_sensitive
    if tasks is not None:
        assert capabilities.tasks == frozenset(tasks)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("proxy", {"max_rows": 5}, r"proxy: option max_rows: Input should be greater than or equal to 10 \(got 5\)"),
    ("representation", {"max_rows": "many"}, r"representation: option max_rows: .* \(got 'many'\)"),
    ("shortcut", {"samples": 0}, r"shortcut: option samples: Input should be greater than or equal to 1 \(got 0\)"),
    ("shortcut", {"region": [0, 4, 0]}, r"shortcut: option region\.3: Field required \(got \[0, 4, 0\]\)"),
    ("mitigation", {"constraints": ["parity"]}, r"mitigation: option constraints\.0: Input should be "
                                                r"'demographic_parity' or 'equalized_odds' \(got 'parity'\)"),
    ("mitigation", {"fit_rows": 50}, r"mitigation: option fit_rows: .* greater than or equal to 100 \(got 50\)"),
    ("template-bias", {"alpha": 0}, r"template-bias: option alpha: Input should be greater than 0 \(got 0\)"),
    ("compression", {"confidence": 1.5}, r"compression: option confidence: Input should be less than 1 \(got 1\.5\)"),
    ("compression", {"n_boot": -1}, r"compression: option n_boot: .* greater than or equal to 0 \(got -1\)"),
    ("sample-distribution", {"reference": "test"}, r"sample-distribution: option reference: Input should be "
                                                   r"'train' or 'data' \(got 'test'\)"),
    ("sample-distribution", {"samples": 1}, r"sample-distribution: option samples: .* equal to 2 \(got 1\)"),
    ("weat", {"permutations": 0}, r"weat: option permutations: .* equal to 1 \(got 0\)"),
    ("weat", {"targets": ["x.txt"]}, r"weat: option targets: List should have at least 2 items"),
    ("direct-bias", {"c": 0}, r"direct-bias: option c: Input should be greater than 0 \(got 0\)"),
    ("direct-bias", {"pairs": [["she"]]}, r"direct-bias: option pairs: a pairs file or a list of \[first, second\] "
                                          r"\(got \[\['she'\]\]\)"),
])
def test_bad_values_are_refused_naming_the_probe_and_the_option(name, options, message):
    with pytest.raises(DataError, match=message) as info:
        PROBES.get(name).parse_options(options)
    assert "\n" not in str(info.value)


def test_defaults_are_the_documented_ones():
    assert PROBES.get("proxy").parse_options().max_rows == 5000
    assert PROBES.get("shortcut").parse_options().model_dump(exclude={"sensitive"}) == {
        "region": None, "method": "integrated-gradients", "samples": 200, "gap_threshold": 0.10,
        "mass_ratio_threshold": 2.0}
    assert PROBES.get("mitigation").parse_options().model_dump(exclude={"sensitive"}) == {
        "strategies": ("threshold-optimizer", "exponentiated-gradient"),
        "constraints": ("demographic_parity", "equalized_odds"), "fit_rows": 4000, "max_iter": 20}
    assert PROBES.get("sample-distribution").parse_options().model_dump(exclude={"sensitive"}) == {
        "classifier": "lenet", "samples": 1000, "collapse_ratio": 0.25, "confidence": 0.9, "reference": "train",
        "diversity_rows": 500}
    assert PROBES.get("weat").parse_options().permutations == 10_000
    assert PROBES.get("direct-bias").parse_options().c == 1.0
    compression = PROBES.get("compression").parse_options()
    assert (compression.per_class, compression.n_boot, compression.confidence, compression.min_group_size) == (
        True, 1000, 0.95, 30)
    template = PROBES.get("template-bias").parse_options()
    assert (template.score, template.top, template.alpha, template.min_gap) == ("probability", 5, 0.05, None)
