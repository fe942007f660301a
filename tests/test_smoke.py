from tests.helpers import assert_error


def test_minds_list_with_key_gives_usage_and_pagination(api):
    response = api.get("/api/v1/minds")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 0, "totalPages": 0}
    assert body["usage"]["mindsUsed"] == 0


def test_minds_list_without_key_gives_401(anon, db):
    assert_error(anon.get("/api/v1/minds"), 401, "missing_api_key")
