r"""JUnit XML renderer: one testsuite per audit, one testcase per gate (xml.etree).

Every string from a spec or a result (titles, gate names, messages) loses the characters
XML 1.0 cannot carry (``\x01`` ...), so CI always gets a document it can parse.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from xai._io import atomic_write_text
from xai._text import xml_text
from xai.audit.check import CheckedAudit

__all__ = ["junit_xml", "write_junit"]


def junit_xml(checked: list[CheckedAudit]) -> str:
    """The JUnit XML document: failures carry the gate's message; failed audits and gates come first."""
    gates = [g for c in checked for g in c.gates]
    root = ET.Element("testsuites", name="xai check", tests=str(len(gates)),
                      failures=str(sum(not g.passed for g in gates)), errors="0")
    for audit in sorted(checked, key=lambda c: c.passed):
        result = audit.result
        suite = ET.SubElement(root, "testsuite", name=xml_text(result.slug), tests=str(len(audit.gates)),
                              failures=str(len(audit.failed)), errors="0", skipped="0",
                              time=f"{result.provenance.wall_seconds:.3f}")
        props = ET.SubElement(suite, "properties")
        for name, value in (("title", result.title), ("spec", result.spec_path),
                            ("model_sha256", result.provenance.model_sha256),
                            ("data_sha256", result.provenance.data_sha256)):
            ET.SubElement(props, "property", name=name, value=xml_text(value))
        for gate in sorted(audit.gates, key=lambda g: g.passed):  # failed gates first (stable)
            case = ET.SubElement(suite, "testcase", classname=xml_text(f"xai.audit.{result.slug}"),
                                 name=xml_text(gate.name), time="0")
            if gate.passed:
                ET.SubElement(case, "system-out").text = xml_text(gate.message)
            else:
                failure = ET.SubElement(case, "failure", message=xml_text(gate.message), type="GateFailed")
                failure.text = xml_text(f"{gate.audit}: {gate.name}\n{gate.message}\n"
                                         f"metric {gate.key or gate.metric} = {gate.value}; "
                                         f"threshold {gate.op} {gate.threshold}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(checked: list[CheckedAudit], path: str | Path) -> Path:
    """Write the JUnit XML atomically."""
    return atomic_write_text(path, junit_xml(checked))
