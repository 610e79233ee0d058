def test_how_a_caption_file_was_read_reaches_the_results_warnings(tmp_path):
    from pipelines.session import load_descriptions

    (tmp_path / "late.csv").write_text("start,end,text\n10,12,a man cooks\n12,14,a dog runs\n")
    (tmp_path / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:03,240\nHello.\n\n2\n00:00:03,240 --> 00:00:07,880\nPasta.\n")
    assert "the first clip starts at 10 s" in " ".join(load_descriptions(tmp_path / "late.csv").warnings)
    assert "not equal contiguous clips" in " ".join(load_descriptions(tmp_path / "talk.srt").warnings)
