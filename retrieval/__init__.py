"""Search over the drone listings: schema, places, local embeddings, the Chroma store, ingest, the query
parser and the hybrid geo-aware engine.

    schema.py     the Listing record (and the text indexed / embedded)
    places.py     places.json: municipalities, counties, outside places; haversine
    embeddings.py all-MiniLM-L6-v2 int8 ONNX (local) or OpenAI
    store.py      Chroma client (embedded or server) and the LangChain vector store
    ingest/       idempotent upsert CLI: python -m retrieval.ingest [--if-missing]
    text.py       BM25 tokenization;  vocab.py  category / feature / price phrases
    query.py      the deterministic parser;  llm_hints.py  the optional LLM step
    index.py      Chroma + in-memory BM25 and filter columns
    engine.py     parse -> filter -> BM25 + vector -> fusion -> geo rerank
    fence.py      how listing text may enter a prompt: fenced, as data
    synth/        the seeded generator of data/listings.jsonl and the bench sets
"""

__all__: list[str] = []
