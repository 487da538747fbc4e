"""Reading what a sweep exposed: Prometheus text (a push's body, a textfile) as plain values."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]  # sample name -> sorted labels -> value


def parse(text: str | bytes) -> Samples:
    if isinstance(text, bytes):
        text = text.decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def value(samples: Samples, name: str) -> float:
    """The value of an unlabelled series `jobfallback_<name>`."""
    return samples[f"jobfallback_{name}"][()]


def by(samples: Samples, name: str) -> dict[tuple[str, ...], float]:
    """A labelled series `jobfallback_<name>`: label values (in label-name order) -> value."""
    return {
        tuple(label for _, label in labels): v
        for labels, v in samples[f"jobfallback_{name}"].items()
    }
