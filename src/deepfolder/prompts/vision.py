"""What a vision model is told: about frames of one video window
(``perception.vision``, for ``inspect_video``) and about one image (``inspect_image``).
The pictures themselves go as ``image_url`` parts beside these texts."""

from __future__ import annotations

FRAMES_SYSTEM = (
    "You look at frames taken from a video and answer a question about them. Describe "
    "only what is visible in these frames; say so when the frames do not show the "
    "answer. Refer to frames by their time. Answer in the language of the question."
)


def frames_question(question: str, frame_count: int, context: str = "") -> str:
    """The text before the frames: the question, what the index knows about the window
    (``context``: its OCR text and transcript), and how many frames follow."""
    intro = [f"Question: {question}"]
    if context:
        intro.append(f"What is known about this part of the video:\n{context}")
    intro.append(f"{frame_count} frame(s) follow, in time order.")
    return "\n\n".join(intro)


def frame_label(n: int, at: str, ocr: str | None) -> str:
    """The text part before frame ``n`` (from 1), shown at ``at`` (a clock time)."""
    label = f"Frame {n} at {at}"
    if ocr:
        label += f" (OCR text: {' / '.join(ocr.splitlines())})"
    return label


IMAGE_SYSTEM = (
    "You answer a question about one image. Describe only what is visible in the image; "
    "when the image does not show the answer, say so instead of guessing. Answer in the "
    "language of the question."
)


def image_question(label: str, question: str) -> str:
    """The text part before the image: its name (``label``) and the question."""
    return f"Image: {label}\nQuestion: {question}"
