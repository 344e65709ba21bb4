"""Training library behind the `accelerate launch training/*.py` scripts: arguments, the shared loop and
where its modules live (placement), and one module per stage (vae, to2v, codec, planner)."""
