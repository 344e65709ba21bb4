"""fit_codec: see t2v/training/codec.py. Run with `accelerate launch training/fit_codec.py --help`."""

from t2v.training.codec import main

if __name__ == "__main__":
    main()
