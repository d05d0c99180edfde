"""The ``exports`` storage on an S3-compatible store (django-storages), built from its settings
in one place for ``ketacare.settings`` and for the tests' loopback store."""


def s3_storage(*, bucket: str, endpoint_url: str | None = None, region: str | None = None,
               access_key: str | None = None, secret_key: str | None = None,
               prefix: str = "exports") -> dict:
    """A ``STORAGES`` entry: a private bucket, objects replaced in place (a name is one
    export's), path-style addressing on a store's own endpoint (MinIO and the like), and short
    connect timeouts so that /readyz answers promptly when the store is down. Credentials left
    None are found by boto's usual chain (``AWS_ACCESS_KEY_ID``..., an instance role)."""
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "location": prefix,
            "default_acl": None,  # never public: the bucket's own (private) policy
            "querystring_auth": True,
            "file_overwrite": True,
            "max_memory_size": 8 * 1024 * 1024,  # larger downloads spool to disk, not memory
            "client_config": Config(
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                signature_version="s3v4", connect_timeout=3, read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    }
