"""Search over the drone listings: schema, places, local embeddings, the Chroma store, ingest, the query
parser and the hybrid geo-aware engine. CONTRIBUTING.md follows a /search request through these files.

    schema.py     the Listing record (and the text indexed / embedded, the hashes ingest compares)
    vocab/        the vocabulary, defined once: categories, services, features, filter phrases
    filters.py    the filter model (InputFilters, SearchFilters): one field and its predicate per filter
    places.py     places.json: municipalities, counties, outside places; haversine
    embeddings.py all-MiniLM-L6-v2 int8 ONNX (local) or OpenAI
    store.py      Chroma client (embedded or server) and the LangChain vector store
    ingest/       idempotent upsert CLI: python -m retrieval.ingest [--if-missing]
    text.py       BM25 tokenization
    query.py      the deterministic parser;  llm_hints.py  the optional LLM step (its schema generated)
    index.py      Chroma + in-memory BM25 and filter columns
    engine.py     parse -> explicit filters -> area, caches -> query embedding -> ranking.py
    ranking.py    filter mask -> BM25 + vector -> fusion -> feature / geo / reputation rerank
    fence.py      how listing text may enter a prompt: fenced, as data
    synth/        the seeded generator: a tool that can rewrite data/listings.jsonl, and the bench sets
"""

__all__: list[str] = []
