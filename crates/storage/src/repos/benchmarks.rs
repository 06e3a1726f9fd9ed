//! `BenchmarkRepository` on SQLite.

use diesel::prelude::*;
use offgrid_domain::benchmark::{BenchmarkFigures, BenchmarkRun};
use offgrid_domain::repo::BenchmarkRepository;
use offgrid_domain::{BenchmarkId, RepoError, Timestamp, UserId};

use crate::db::Database;
use crate::schema::benchmark_runs as b;

type Row = (
    String,
    i64,
    Option<String>,
    String,
    i64,
    i64,
    f64,
    f64,
    f64,
    String,
    i64,
    String,
);

fn run(
    (id, at, user, model, prompt, generated, ptps, dtps, ttft, cpu, threads, simd): Row,
) -> BenchmarkRun {
    BenchmarkRun {
        id: BenchmarkId::from_string(id),
        at: Timestamp(at),
        user_id: user.map(UserId::from_string),
        figures: BenchmarkFigures {
            model,
            prompt_tokens: prompt,
            generated_tokens: generated,
            prompt_tps: ptps,
            decode_tps: dtps,
            ttft_ms: ttft,
            cpu,
            threads,
            simd,
        },
    }
}

impl BenchmarkRepository for Database {
    fn record(
        &self,
        user: Option<&UserId>,
        f: BenchmarkFigures,
        at: Timestamp,
    ) -> Result<BenchmarkRun, RepoError> {
        let id = BenchmarkId::generate();
        self.write(|conn| {
            diesel::insert_into(b::table)
                .values((
                    b::id.eq(id.as_str()),
                    b::at.eq(at.0),
                    b::user_id.eq(user.map(UserId::as_str)),
                    b::model.eq(&f.model),
                    b::prompt_tokens.eq(f.prompt_tokens),
                    b::generated_tokens.eq(f.generated_tokens),
                    b::prompt_tps.eq(f.prompt_tps),
                    b::decode_tps.eq(f.decode_tps),
                    b::ttft_ms.eq(f.ttft_ms),
                    b::cpu.eq(&f.cpu),
                    b::threads.eq(f.threads),
                    b::simd.eq(&f.simd),
                ))
                .execute(conn)?;
            Ok(())
        })?;
        Ok(BenchmarkRun {
            id,
            at,
            user_id: user.cloned(),
            figures: f,
        })
    }

    fn recent(&self, model: Option<&str>, limit: i64) -> Result<Vec<BenchmarkRun>, RepoError> {
        let rows: Vec<Row> = self.read(|conn| {
            let mut q = b::table.into_boxed();
            if let Some(m) = model {
                q = q.filter(b::model.eq(m));
            }
            // Runs of the same second in the order they were stored.
            q.order(b::at.desc())
                .then_order_by(diesel::dsl::sql::<diesel::sql_types::BigInt>("rowid").desc())
                .limit(limit.clamp(1, 1000))
                .select((
                    b::id,
                    b::at,
                    b::user_id,
                    b::model,
                    b::prompt_tokens,
                    b::generated_tokens,
                    b::prompt_tps,
                    b::decode_tps,
                    b::ttft_ms,
                    b::cpu,
                    b::threads,
                    b::simd,
                ))
                .load::<Row>(conn)
        })?;
        Ok(rows.into_iter().map(run).collect())
    }
}
