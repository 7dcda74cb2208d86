"""A multipart field whose name cannot be read (found by schemathesis) is a 4xx, not a 500."""

from tests.api.conftest import auth


def test_a_field_named_only_a_carriage_return_is_refused_with_the_envelope(client, world):
    body = b'--B\r\nContent-Disposition: form-data; name="\r"\r\n\r\nnull\r\n--B--\r\n'
    response = client.post(
        "/api/v1/villages/village-a/declarations",
        data=body,
        headers={**auth(world.tokens["admin"]), "Content-Type": "multipart/form-data; boundary=B"},
    )
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    assert response.json["error"] and response.json["message"]
