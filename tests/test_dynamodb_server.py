"""DynamoDB Local, as the online-store tests will use it: isolated on loopback, with the API they need.

These pin the server behaviours the sync depends on (conditional writes that keep
the newer value, TTL, batch limits), so a change of server version shows here first.
"""

from __future__ import annotations

import pytest
from dynamodb_server import dynamodb_client, running_dynamodb_local

pytestmark = pytest.mark.dynamodb


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running_dynamodb_local(tmp_path_factory.mktemp("dynamodb")) as endpoint:
        yield dynamodb_client(endpoint)


def test_a_conditional_put_keeps_the_newer_value(client):
    client.create_table(
        TableName="conditional",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    newer_only = "attribute_not_exists(pk) OR feature_ts < :ts"

    def put(ts: int, value: str) -> bool:
        try:
            client.put_item(
                TableName="conditional",
                Item={"pk": {"S": "m#7"}, "feature_ts": {"N": str(ts)}, "v": {"S": value}},
                ConditionExpression=newer_only,
                ExpressionAttributeValues={":ts": {"N": str(ts)}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    assert put(10, "first") and put(20, "newer")
    assert not put(15, "older") and not put(20, "same time")
    item = client.get_item(TableName="conditional", Key={"pk": {"S": "m#7"}})["Item"]
    assert item["v"]["S"] == "newer"


def test_ttl_and_batch_limits(client):
    client.create_table(
        TableName="limits",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    client.update_time_to_live(TableName="limits", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    status = client.describe_time_to_live(TableName="limits")["TimeToLiveDescription"]
    assert status["AttributeName"] == "ttl" and status["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    requests = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(26)]
    with pytest.raises(client.exceptions.ClientError, match="ValidationException"):
        client.batch_write_item(RequestItems={"limits": requests})  # 25 at most
    assert client.batch_write_item(RequestItems={"limits": requests[:25]})["UnprocessedItems"] == {}
    keys = [{"pk": {"S": f"k{i}"}} for i in range(25)]
    found = client.batch_get_item(RequestItems={"limits": {"Keys": keys}})["Responses"]["limits"]
    assert len(found) == 25
