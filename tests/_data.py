"""Where the shared real data lies (beside the checkout); tests skip without it."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"
YT8M = SHARED_DATA / "yt8m"
