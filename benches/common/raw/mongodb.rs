//! The MongoDB store's baseline: the `mongodb` crate's sync API with the store's filters.

use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::sync::{Client, Collection};

use super::{Raw, RawCas, RawRecord, fail};

/// The `mongodb` crate's sync API (its own pool): the store's filters, updates and
/// projection on a collection with the same indexes.
pub struct MongoRaw {
    collection: Collection<Document>,
}

fn binary(data: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: data.to_vec(),
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == 11000,
        ErrorKind::Command(failure) => failure.code == 11000,
        _ => false,
    }
}

fn date_after(ttl: Duration) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() + ttl.as_millis() as i64)
}

impl MongoRaw {
    pub fn open(uri: &str, database: &str, collection: &str) -> MongoRaw {
        let options = ClientOptions::parse(uri)
            .run()
            .unwrap_or_else(|e| fail("mongodb", "URI", e));
        let client = Client::with_options(options).unwrap_or_else(|e| fail("mongodb", "client", e));
        let collection = client.database(database).collection::<Document>(collection);
        collection
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "expiration": 1 })
                    .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "id": 1 })
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            ])
            .run()
            .unwrap_or_else(|e| fail("mongodb", &format!("indexes on {uri}"), e));
        MongoRaw { collection }
    }

    fn write(&self, filter: Document, data: &[u8], ttl: Duration, upsert: bool) -> bool {
        let update = doc! { "$set": { "val": binary(data), "expiration": date_after(ttl) } };
        let result = self
            .collection
            .update_one(filter, update)
            .upsert(upsert)
            .run();
        match result {
            Ok(result) => result.matched_count == 1 || result.upserted_id.is_some(),
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => fail("mongodb", "update", e),
        }
    }
}

impl Raw for MongoRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        let mut document = self
            .collection
            .find_one(doc! { "id": key, "expiration": { "$gt": DateTime::now() } })
            .projection(doc! { "_id": 0, "val": 1, "expiration": 1 })
            .run()
            .unwrap_or_else(|e| fail("mongodb", "find", e))?;
        std::hint::black_box(document.get_datetime("expiration").ok());
        match document.remove("val") {
            Some(Bson::Binary(binary)) => Some(RawRecord::new(binary.bytes)),
            _ => None,
        }
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        self.write(
            doc! { "id": key, "expiration": { "$lte": DateTime::now() } },
            data,
            ttl,
            true,
        )
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let filter = doc! {
            "id": key,
            "val": binary(&expected.data),
            "expiration": { "$gt": DateTime::now() },
        };
        if self.write(filter, data, ttl, false) {
            RawCas::Stored
        } else {
            RawCas::Conflict(self.load(key))
        }
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        let filter = doc! {
            "id": key,
            "val": binary(&expected.data),
            "expiration": { "$gt": DateTime::now() },
        };
        let deleted = self
            .collection
            .delete_one(filter)
            .run()
            .unwrap_or_else(|e| fail("mongodb", "delete", e))
            .deleted_count;
        if deleted == 1 {
            RawCas::Stored
        } else {
            RawCas::Conflict(self.load(key))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        if !self.write(doc! { "id": key }, data, ttl, true) {
            self.write(doc! { "id": key }, data, ttl, true);
        }
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        self.collection
            .update_one(
                doc! { "id": key, "expiration": { "$gt": DateTime::now() } },
                doc! { "$set": { "expiration": date_after(ttl) } },
            )
            .run()
            .unwrap_or_else(|e| fail("mongodb", "touch", e))
            .matched_count
            == 1
    }
}
