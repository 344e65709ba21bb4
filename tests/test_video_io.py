"""Video files: what is written reads back; a failed write leaves nothing behind."""

import signal

import numpy as np
import pytest

from t2v.video_io import VideoWriter, check_output_path, read_video, write_video


@pytest.mark.parametrize("ext", ["mp4", "webm", "gif"])
def test_write_read_roundtrip(tmp_path, ext):
    frames = np.zeros((12, 32, 48, 3), dtype=np.uint8)
    for i in range(12):  # a red square moving right (gif writers merge identical frames)
        frames[i, 8:24, 8 + i : 24 + i] = (230, 40, 40)
    path = write_video(frames, tmp_path / f"v.{ext}", fps=8)
    back, fps = read_video(path)
    assert back.shape == frames.shape
    assert fps == pytest.approx(8, rel=0.05)
    # lossy codecs: the red square is still red and the background still black
    assert np.abs(back[:, 16, 20].astype(int) - (230, 40, 40)).max() < 25
    assert back[:, 2, 2].max() < 25


def test_float_frames_are_converted(tmp_path):
    path = write_video(np.full((4, 16, 16, 3), 0.5, dtype=np.float32), tmp_path / "grey.mp4", fps=4)
    back, _ = read_video(path)
    assert abs(int(back.mean()) - 128) < 6


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "v.mp4", fps=8) as writer:
            writer.append(np.zeros((3, 16, 16, 3), dtype=np.uint8))
            raise RuntimeError("generation failed")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as in a terminal, even when pytest started with it ignored (`nohup pytest &`)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_write_keeps_the_whole_chunk_and_a_playable_file(tmp_path, ctrl_c):
    # Ctrl-C while a chunk goes to ffmpeg used to stop mid-chunk, and inside imageio-ffmpeg's writer it
    # killed ffmpeg (an mp4 without its index). Now the chunk is finished, then KeyboardInterrupt comes.
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "v.mp4", fps=8) as writer:
            writer.append(frames[:4])
            write_one = writer._writer.append_data

            def interrupted(frame):
                if writer.frames_written == 5:
                    signal.raise_signal(signal.SIGINT)  # what Ctrl-C does, in the middle of the second chunk
                write_one(frame)

            writer._writer.append_data = interrupted
            writer.append(frames)
    assert writer.frames_written == 12
    back, _ = read_video(tmp_path / "v.mp4")
    assert len(back) == 12
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C handling is as before


def test_wrong_frames_are_refused(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "v.mp4", fps=8) as writer:
            writer.append(np.zeros((3, 16, 16, 3), dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,message", [("v.avi", "must end in one of"), ("v", "must end in one of"), ("no/such/dir/v.mp4", "does not exist")])
def test_bad_output_paths(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        check_output_path(tmp_path / name)
