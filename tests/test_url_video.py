"""A URL given as the video says it is one (as a path, "http://host/a.mp4" read "http:/host/a.mp4: no such file")."""

from __future__ import annotations

import pytest

from pipelines import Session, ground
from pipelines.cli import main
from vidground.errors import VideoDecodeError

URLS = ["http://example.com/a.mp4", "https://youtu.be/abc", "s3://bucket/key.mp4", "rtsp://camera/stream"]


@pytest.mark.parametrize("url", URLS)
def test_a_url_as_the_video_is_refused_as_a_url(url):
    with pytest.raises(VideoDecodeError) as err:
        ground(url, "a dog")
    assert err.value.path == url and "is a URL" in err.value.reason and "download it first" in err.value.reason
    with Session() as session, pytest.raises(VideoDecodeError, match="is a URL"):
        session.describe(url)


def test_the_command_line_says_so_too(capsys):
    assert main(["ground", URLS[0], "a dog"]) == 1
    err = capsys.readouterr().err
    assert f"{URLS[0]}: is a URL" in err and "no such file" not in err


@pytest.mark.parametrize("path", ["missing.mp4", "c:/x.mp4", "not a url://"])
def test_a_missing_file_is_still_no_such_file(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VideoDecodeError, match="no such file"):
        ground(path, "a dog")
