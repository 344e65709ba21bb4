# The quick profile: the method on a small budget, about 90 minutes on a 2-core CPU. Every stage
# trains its YAML's steps in one part; the model is the packaged model's size (0.35 M-parameter
# denoiser, VAE of 8× spatial compression).
MODEL_ARGS=(--width 64 --vae-compression 8)
DATA_ARGS=(--num 240 --seconds 8 --max-seconds 64 --seed 0)
