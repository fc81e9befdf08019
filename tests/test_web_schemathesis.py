"""Property-based API testing: schemathesis generates requests from /openapi.json (valid and
invalid ones) and checks that no answer is a 5xx and every answer matches its documented
status codes, content type and schema. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis import checks

from paperfeed.search.lexical import LexicalIndex
from paperfeed.web.app import create_app

from .webutil import seed

EXAMPLES = 40


@pytest.mark.slow
def test_api_conforms_to_its_openapi_document(settings, db) -> None:  # type: ignore[no-untyped-def]
    seed(db)
    LexicalIndex(settings).update(db, progress=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, db))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        _checker(operation)()


def _checker(operation):  # type: ignore[no-untyped-def]
    @given(case=operation.as_strategy())
    @hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case) -> None:  # type: ignore[no-untyped-def]
        # Calendar validity (2025-02-30, 2025-W53) and "only stopwords" cannot be written as
        # JSON Schema, so a schema-valid request may rightly get a 4xx: that check is off.
        response = case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])
        assert response.status_code < 500, (operation.label, case.path_parameters, case.query)

    return check
