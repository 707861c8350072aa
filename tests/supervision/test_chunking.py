from loramem.supervision.chunking import chunk_text, split_sentences

DOC = " ".join(f"Sentence number {i} says that item {i} weighs {i * 7} grams." for i in range(40))


def test_chunks_fit_overlap_and_cover_every_sentence():
    chunks = chunk_text(DOC, max_tokens=60, overlap=12)
    assert len(chunks) > 3
    assert all(len(c.text.split()) <= 60 for c in chunks)
    # consecutive chunks share their boundary sentence
    for a, b in zip(chunks, chunks[1:]):
        assert split_sentences(a.text)[-1] == split_sentences(b.text)[0]
    covered = {s for c in chunks for s in split_sentences(c.text)}
    assert covered == set(split_sentences(DOC))
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_no_overlap_and_token_counter():
    chunks = chunk_text(DOC, max_tokens=100, overlap=0, count=lambda t: len(t))  # characters as "tokens"
    assert all(len(c.text) <= 100 + len(split_sentences(c.text)) for c in chunks)  # + the joining spaces
    assert sum(len(split_sentences(c.text)) for c in chunks) == 40


def test_an_overlong_sentence_is_cut():
    long = "word " * 500 + "end."
    chunks = chunk_text(long, max_tokens=100, overlap=10)
    assert len(chunks) >= 5 and all(len(c.text.split()) <= 100 for c in chunks)
    assert chunk_text("Short one.", 100, 10)[0].text == "Short one."
