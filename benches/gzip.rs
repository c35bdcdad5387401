//! What a gzip search answer costs: deflating a page of 100 images, done once per page on
//! its first gzip request, and assembling an answer around it, done on every request.
//!
//! Run with `cargo bench --bench gzip`; add `-- --quick` for a short run.

use std::hint::black_box;

use anya_image_api::config::SOURCE_ORDER;
use anya_image_api::gzip::{Deflated, Part, member};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Images on the benchmarked page: the default `per_page`.
const IMAGES: usize = 100;

/// The JSON text of image `n` as an answer holds it: shaped like the service's own (six
/// sources, nine tags), with the MD5, ids and scores differing from image to image.
fn image(n: usize) -> String {
    let md5 = format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let host = "https://img.example.net";
    let sources: Vec<String> = (SOURCE_ORDER.iter().enumerate())
        .map(|(i, source)| {
            let id = 5_000_000 + n * 7 + i;
            let score = n % 40;
            format!(
                r#"{{"source":"{source}","id":{id},"post_url":"{host}/{source}/posts/{id}","score":{score}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"md5":"{md5}","file_url":"{host}/images/{md5}.jpg","sample_url":"{host}/samples/sample_{md5}.jpg","preview_url":"{host}/thumbnails/thumbnail_{md5}.jpg","width":{},"height":{},"rating":"general","score":{},"tags":["anya_(spy_x_family)","anya_forger","dress","mother_and_daughter","multiple_girls","pink_hair","spy_x_family","yor_briar","yor_forger"],"sources":[{}]}}"#,
        1000 + n % 7 * 300,
        900 + n % 5 * 250,
        n % 40,
        sources.join(",")
    )
}

fn page() -> Vec<u8> {
    let images: Vec<String> = (0..IMAGES).map(image).collect();
    images.join(",").into_bytes()
}

fn benches(c: &mut Criterion) {
    let images = page();
    let reports = br#"{"danbooru":{"status":"ok","tags":["anya_(spy_x_family)"],"pages":8,"posts":1470,"skipped_posts":30,"pages_skipped":0,"elapsed_ms":1149,"error":null}}"#;
    let head = br#"{"query":{"character":"Anya Forger","series":"Spy x Family","sources":["safebooru","danbooru","gelbooru","yandere","konachan","tbib"],"rating":["general","sensitive","questionable","explicit"],"max_pages":100},"images":["#;
    let middle = br#"],"total":2362,"page":1,"per_page":100,"max_pages":24,"sources":"#;
    let tail = br#","partial":false,"truncated":false,"cached":true,"elapsed_ms":0}"#;

    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(images.len() as u64));
    group.bench_function("deflate a page of 100 images (once per page)", |b| {
        b.iter(|| Deflated::new([black_box(&images[..])]));
    });
    let (images_z, reports_z) = (Deflated::new([&images[..]]), Deflated::new([&reports[..]]));
    group.throughput(Throughput::Elements(1));
    group.bench_function("assemble an answer around it (every request)", |b| {
        b.iter(|| {
            member([
                Part::Plain(black_box(head)),
                Part::Deflated(&images_z),
                Part::Plain(middle),
                Part::Deflated(&reports_z),
                Part::Plain(tail),
            ])
        });
    });
    group.finish();
}

criterion_group!(gzip, benches);
criterion_main!(gzip);
