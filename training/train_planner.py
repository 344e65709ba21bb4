"""train_planner: see t2v/training/planner.py. Run with `accelerate launch training/train_planner.py --help`."""

from t2v.training.planner import main

if __name__ == "__main__":
    main()
