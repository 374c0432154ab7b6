//! A fresh bucket on the S3 API the tests may use (`PEACE_TEST_S3_ENDPOINT`: moto in
//! CI, see `.ci/run`; a MinIO with the caller's `AWS_*` credentials elsewhere).

#![allow(clippy::unwrap_used)]

/// A bucket made for one test, and the endpoint it lives on.
pub struct TestBucket {
    pub endpoint: String,
    pub bucket: String,
}

impl TestBucket {
    /// A new empty bucket; `None` (with a note) when no endpoint is set, and the test
    /// skips.
    pub async fn create() -> Option<TestBucket> {
        let Some(endpoint) = std::env::var("PEACE_TEST_S3_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        else {
            eprintln!("skipped: set PEACE_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:5000 for moto)");
            return None;
        };
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let bucket = format!("peace-e2e-{:016x}", rand::random::<u64>());
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{}", created.status());
        Some(TestBucket { endpoint, bucket })
    }

    /// Points `config`'s storage at the bucket, under the prefix `peace`.
    pub fn configure(&self, config: &mut peace::Config) {
        config.storage.s3_bucket = self.bucket.clone();
        config.storage.s3_endpoint = self.endpoint.clone();
        config.storage.s3_region = "us-east-1".into();
        config.storage.s3_prefix = "peace".into();
        config.storage.s3_allow_http = self.endpoint.starts_with("http://");
    }
}
