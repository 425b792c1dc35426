"""The two services as a server adapter sees them: decoded request fields in, response values out.

Triton's model.py files and the Dynamo worker both wrap these, so the request handling, the chain and the
validation rules exist once. Settings come from a model's config.pbtxt `parameters`, the one place a
deployment sets them for either server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from catalogvlm.taxonomy import CategoryCorrector, CorrectedCategory, TaxonomyInputError, load_taxonomy

from .chain import ChainObserver, ChainSettings, ProductUnderstandingChain, VlmEngine
from .errors import InvalidInput
from .limits import Limits
from .product import TEXT_FIELDS, product_from_raw

MAX_CATEGORIES_PER_REQUEST = 1024


class ProductUnderstandingService:
    def __init__(self, parameters: Mapping[str, str], engine: VlmEngine, observer: ChainObserver | None = None) -> None:
        self.limits = Limits.from_parameters(parameters)
        settings = ChainSettings(
            max_retries_per_stage=int(parameters["max_retries_per_stage"]),
            category_max_tokens=int(parameters["category_max_tokens"]),
            attribute_max_tokens=int(parameters["attribute_max_tokens"]),
        )
        taxonomy = load_taxonomy(parameters["taxonomy_dir"])
        self.chain = ProductUnderstandingChain(taxonomy, engine, settings, observer=observer)

    def answer(self, raw: Mapping[str, bytes | None], image: bytes | None) -> str:
        """The `result` JSON for one product, or InvalidInput / StageFailed."""
        product = product_from_raw({name: raw.get(name) for name in TEXT_FIELDS}, image, self.limits)
        return json.dumps(self.chain.run(product).to_dict(), ensure_ascii=False)


class TaxonomyValidationService:
    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.corrector = CategoryCorrector(load_taxonomy(parameters["taxonomy_dir"]))

    def answer(self, queries: Sequence[bytes | str]) -> list[str]:
        """One JSON {id, full_name, score, corrected} per path or id."""
        if not 1 <= len(queries) <= MAX_CATEGORIES_PER_REQUEST:
            raise InvalidInput("category", f"holds {len(queries)} elements; send 1 to {MAX_CATEGORIES_PER_REQUEST}")
        return [json.dumps(self._correct(index, query).to_dict()) for index, query in enumerate(queries)]

    def _correct(self, index: int, query: bytes | str) -> CorrectedCategory:
        try:
            return self.corrector.correct(query)
        except TaxonomyInputError as error:
            raise InvalidInput(f"category[{index}]", str(error)) from error
