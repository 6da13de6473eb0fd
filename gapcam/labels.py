"""The class names of the reference lane-change task: the one place they are spelled.

The model card carries the class list of whichever model is loaded; these are the names the
reference model, the synthetic generator and the ROS message constants are built from.
"""

from __future__ import annotations

BLOCKED = "blocked"
FREE = "free"
UNDEFINED = "undefined"

#: Order of the reference model's logits.
LANE_CHANGE_CLASSES: tuple[str, ...] = (BLOCKED, FREE, UNDEFINED)

#: The class reported when the evidence is too weak to act on.
FALLBACK_CLASS = UNDEFINED


def unknown_labels_note(labels, classes) -> str | None:  # noqa: ANN001 - any iterables of str
    """One line when ground-truth ``labels`` are not (all) the model's ``classes``, else ``None``.

    Replay, evaluate and quantize score only labels the model knows; this says so instead of
    reporting an accuracy of 0.0 for a data set labelled with another class set.
    """
    present = sorted({str(x) for x in labels if x is not None})
    unknown = [x for x in present if x not in set(classes)]
    if not unknown:
        return None
    shown = ", ".join(unknown[:6]) + (" ..." if len(unknown) > 6 else "")
    if len(unknown) == len(present):
        return (
            f"ground-truth labels ({shown}) are not the model's classes "
            f"({', '.join(list(classes)[:6])}{' ...' if len(classes) > 6 else ''}); "
            "accuracy not computed"
        )
    return f"ground-truth labels {shown} are not the model's classes; those frames are not scored"
