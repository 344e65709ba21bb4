"""The Shapes world: the procedural world of captioned videos the default model is trained on (docs/shapes_world.md).

Everything that knows this world lives here, and nothing else in the library imports it:

- `world`: its colors, shapes, motions and words, its caption grammar and storyboard splitter, and the
  renderer of the ground-truth videos;
- `folder`: a training folder of rendered videos and metadata.jsonl (`t2v data shapes`);
- `bench`: ShapesBench, generated videos scored from their pixels against their captions (`t2v eval shapes`);
- `evaluate`: a model rendered on held-out or training prompts into a folder ShapesBench scores;
- `model`: the default model's configuration, freshly initialised (`python -m t2v.shapes.model OUT`), where
  the Shapes recipe (`training/recipes/shapes/run.sh`) starts.
"""

from .world import COLORS, HELD_OUT, MOTIONS, SHAPES, auto_storyboard, vocabulary

GRAMMAR = "shapes"  # what a model trained on this world's captions says in its `caption_grammar`


def storyboard_for(pipe, prompt: str) -> list[str] | None:
    """The parts of a caption with changes, as a storyboard, when `pipe` was trained on the Shapes grammar;
    otherwise None (the prompt is read whole)."""
    return auto_storyboard(prompt) if pipe.config.get("caption_grammar") == GRAMMAR else None


__all__ = ["COLORS", "GRAMMAR", "HELD_OUT", "MOTIONS", "SHAPES", "auto_storyboard", "storyboard_for", "vocabulary"]
