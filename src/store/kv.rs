//! Encrypted blobs in the `SECRETS` KV namespace.

use worker::KvStore;

use super::{BlobStore, StoreError};

pub struct KvBlobs {
    kv: KvStore,
}

impl KvBlobs {
    pub fn new(kv: KvStore) -> Self {
        KvBlobs { kv }
    }
}

fn kv_error(error: worker::kv::KvError) -> StoreError {
    StoreError::Failed(format!("KV: {error}"))
}

impl BlobStore for KvBlobs {
    async fn put_blob(&self, name: &str, blob: &str) -> Result<(), StoreError> {
        self.kv.put(name, blob).map_err(kv_error)?.execute().await.map_err(kv_error)
    }

    async fn get_blob(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.kv.get(name).text().await.map_err(kv_error)
    }

    async fn delete_blob(&self, name: &str) -> Result<(), StoreError> {
        self.kv.delete(name).await.map_err(kv_error)
    }
}
