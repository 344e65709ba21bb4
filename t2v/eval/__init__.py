"""Evaluation of generated videos. ShapesBench (color, shape and motion accuracy on the Shapes world)
is planned for this package and is not here yet."""
