
def test_smoke(login, requested_cards, services):
    op = login()
    r = op.get("/batch-orders")
    assert "BATCH ORDERS" in r.get_data(as_text=True)
    r = op.post("/batch-orders/issue-multiple", page="/batch-orders")
    assert r.status_code == 303, r.get_data(as_text=True)
    url = r.headers["Location"]
    iid = url.rsplit("/", 1)[-1]
    services.runner.wait(iid, 30)
    page = op.get(url + "?number=TC-00001").get_data(as_text=True)
    print(page)
