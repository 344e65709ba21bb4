"""train_to2v: see t2v/training/to2v.py. Run with `accelerate launch training/train_to2v.py --help`."""

from t2v.training.to2v import main

if __name__ == "__main__":
    main()
