"""A real S3-compatible store on loopback for tests: moto's server in a thread of the test
process (fixtures ``s3`` and ``s3_exports`` in conftest.py). Every call goes through boto over
HTTP to it; nothing in boto is mocked."""

import uuid

import boto3
from moto.server import ThreadedMotoServer

from ketacare.objectstore import s3_storage

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "ketacare-test", "aws_secret_access_key": "ketacare-test-secret"}


class Store:
    def __init__(self, server: ThreadedMotoServer):
        self.server = server
        host, port = server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.bucket = f"ketacare-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                                   **KEYS)
        self.client.create_bucket(Bucket=self.bucket)

    def storage_setting(self) -> dict:
        return s3_storage(bucket=self.bucket, endpoint_url=self.endpoint, region=REGION,
                          access_key=KEYS["aws_access_key_id"],
                          secret_key=KEYS["aws_secret_access_key"])

    def env(self) -> dict:
        """The environment a node needs to use this store (README, Configuration)."""
        return {
            "EXPORT_S3_BUCKET": self.bucket, "EXPORT_S3_ENDPOINT_URL": self.endpoint,
            "EXPORT_S3_REGION": REGION,
            "EXPORT_S3_ACCESS_KEY_ID": KEYS["aws_access_key_id"],
            "EXPORT_S3_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"],
        }

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def start_server() -> ThreadedMotoServer:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server
