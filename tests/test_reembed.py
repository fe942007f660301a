"""`manage.py reembed`: a workspace's chunks get the current embedder's vectors, swapped in per source, resumably,
and nothing outside the workspace changes."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from knowledge.embeddings import get_embedder
from knowledge.models import Chunk, Source
from knowledge.search import search_chunks
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import make_workspace

LIGHTHOUSES = [
    "The Fresnel lens let a lighthouse beam reach twenty nautical miles.",
    "Keepers trimmed the wicks every night and logged passing ships.",
]
VOLCANOES = ["Basaltic lava flows far before it cools; andesite builds steep stratovolcanoes."]
WRONG = [1.0] + [0.0] * 383  # a vector no passage of these sources is near


def indexed_mind(name: str) -> Mind:
    mind = Mind.objects.create(workspace=make_workspace(name), name=name, slug=f"{name.lower()}-reembed")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    return mind


def vectors_of(mind: Mind) -> dict[str, np.ndarray]:
    return {c.id: np.asarray(c.embedding) for c in Chunk.objects.filter(mind=mind)}


def corrupt(mind: Mind) -> None:
    Chunk.objects.filter(mind=mind).update(embedding=WRONG, embedding_model="old-model")
    Source.objects.filter(mind=mind).update(embedding_model="old-model")


def reembed(*args: str) -> str:
    out = StringIO()
    call_command("reembed", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_reembed_gives_every_chunk_of_the_workspace_the_current_vectors_and_nothing_else_changes():
    mind, other = indexed_mind("Acme"), indexed_mind("Other")
    expected = vectors_of(mind)
    corrupt(mind)
    corrupt(other)

    out = reembed("--workspace", mind.workspace_id)

    assert f"{len(expected)} chunks of 2 sources" in out
    model = get_embedder().model_name
    for chunk in Chunk.objects.filter(mind=mind):
        assert np.asarray(chunk.embedding) @ expected[chunk.id] > 0.9999
        assert (
            chunk.embedding_model == model
            and chunk.next_embedding is None
            and chunk.next_embedding_model == ""
        )
    assert set(Source.objects.filter(mind=mind).values_list("embedding_model", flat=True)) == {model}
    assert all(np.allclose(v, WRONG) for v in vectors_of(other).values())
    assert set(Chunk.objects.filter(mind=other).values_list("embedding_model", flat=True)) == {"old-model"}
    hits = search_chunks(
        mind=mind, query="How far did the lighthouse beam reach?", mode="vector", threshold=0
    )
    assert hits[0].chunk.source.name == "Lighthouses"


@pytest.mark.django_db
def test_reembed_resumes_an_interrupted_run_keeping_the_vectors_it_had_written():
    mind = indexed_mind("Acme")
    total = Chunk.objects.filter(mind=mind).count()
    corrupt(mind)
    first = Chunk.objects.filter(mind=mind, source__name="Lighthouses").order_by("ordinal").first()
    # What an interrupted run leaves: one chunk's new vector written beside the old one, not swapped yet.
    written = get_embedder().embed_query("a vector only the earlier run could have written")
    Chunk.objects.filter(id=first.id).update(
        next_embedding=written, next_embedding_model=get_embedder().model_name
    )

    out = reembed("--workspace", mind.workspace_id)

    assert f"{total - 1} chunks of 2 sources" in out  # the one already written is not embedded again
    assert np.allclose(Chunk.objects.get(id=first.id).embedding, written, atol=1e-6)
    assert not Chunk.objects.filter(mind=mind, embedding_model="old-model").exists()


@pytest.mark.django_db
def test_reembed_twice_changes_nothing_the_second_time():
    mind = indexed_mind("Acme")
    corrupt(mind)
    reembed("--workspace", mind.workspace_id)
    after_first = vectors_of(mind)
    reembed("--workspace", mind.workspace_id)
    after_second = vectors_of(mind)
    assert after_first.keys() == after_second.keys()
    assert all(np.allclose(after_first[k], after_second[k], atol=1e-6) for k in after_first)


@pytest.mark.django_db
def test_reembed_stale_only_skips_chunks_already_of_the_current_model():
    mind = indexed_mind("Acme")
    Chunk.objects.filter(mind=mind, source__name="Volcanoes").update(
        embedding=WRONG, embedding_model="old-model"
    )
    lighthouses = {c.id: c.embedding for c in Chunk.objects.filter(mind=mind, source__name="Lighthouses")}

    out = reembed("--workspace", mind.workspace_id, "--stale-only")

    assert "1 chunks of 1 sources" in out
    assert not Chunk.objects.filter(mind=mind, embedding_model="old-model").exists()
    for chunk in Chunk.objects.filter(id__in=lighthouses):
        assert np.array_equal(chunk.embedding, lighthouses[chunk.id])


@pytest.mark.django_db
def test_reembed_of_an_unknown_workspace_or_a_bad_batch_size_is_an_error():
    with pytest.raises(CommandError, match="No workspace"):
        reembed("--workspace", "ws_missing")
    mind = indexed_mind("Acme")
    with pytest.raises(CommandError, match="batch-size"):
        reembed("--workspace", mind.workspace_id, "--batch-size", "0")
