"""The listing search as a LangChain retriever, so a chain's retrieval is a run of its own.

    ListingRetriever(engine=...).invoke("roof inspection", interpreted=it, limit=3) -> [Document]

Each `Document` is one listing: `page_content` is the text the search indexes, `metadata` every field of the
listing plus `score` and `distance_miles`, as /search returns them. Callbacks, `stream_events`
(`on_retriever_end` with the documents) and the playgrounds' intermediate steps therefore show what was
retrieved before any model runs. The engine does the work (retrieval/engine.py); this is only its face.
"""

from __future__ import annotations

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval.engine import Outcome, SearchEngine
from retrieval.query import Interpreted

__all__ = ["ListingRetriever", "documents_of"]


def documents_of(outcome: Outcome) -> list[Document]:
    """One document per hit, the listing's fields and its score and distance as metadata."""
    return [
        Document(
            page_content=h.listing.search_text(),
            metadata={**h.listing.__dict__, "score": h.score, "distance_miles": h.distance_miles},
            id=h.listing.id,
        )
        for h in outcome.hits
    ]


class ListingRetriever(BaseRetriever):
    """The search engine behind LangChain's retriever interface.

    Args:
        engine: the search engine (`retrieval.engine.build_search_engine`).
        k: how many listings at most, unless a call says otherwise (`limit=`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: SearchEngine
    k: int = 3

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
        interpreted: Interpreted | None = None, limit: int | None = None,
    ) -> list[Document]:
        """Args:
        query: the words to search (ignored when `interpreted` is given: its own text is searched).
        interpreted: a reading of the request made earlier (a conversation condensed, explicit filters).
        limit: how many listings at most (default `k`).
        """
        return documents_of(self.engine.search(query, interpreted=interpreted, limit=limit or self.k))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        interpreted: Interpreted | None = None, limit: int | None = None,
    ) -> list[Document]:
        return documents_of(await self.engine.asearch(query, interpreted=interpreted, limit=limit or self.k))
