//! [`World::standard`]: a Spy x Family world on all six source ids, with known overlaps,
//! colliding names and the recorded fixtures, for the binary, demos and benchmarks; and
//! [`World::big`], the same names at a size chosen for memory and load benchmarks.

use std::ops::Range;

use crate::post::{PostSpec, Rating};
use crate::world::{SimFamily, World};

/// Anya's tag on Danbooru, Gelbooru, Safebooru and TBIB.
const ANYA: &str = "anya_(spy_x_family)";
/// Anya's tag on Yande.re and Konachan.
const ANYA_MOE: &str = "anya_forger";
const SERIES: &str = "spy_x_family";

impl World {
    /// A realistic Spy x Family scenario, stable across releases.
    ///
    /// Image indices (equal index = equal MD5 across sources) of Anya's posts:
    ///
    /// - `danbooru` (danbooru): `anya_(spy_x_family)` on 0..1500, 1500 posts, of which 30
    ///   are restricted (image % 50 == 7); aliases `anya_forger` and `yor_forger`.
    /// - `gelbooru` (gelbooru, no credentials required): `anya_(spy_x_family)` on
    ///   200..1500 and 3000..3200, 1500 posts.
    /// - `safebooru` (gelbooru_v02, JSON tags, all rated general): `anya_(spy_x_family)`
    ///   on 0..900, 1200..1300 and 3100..3300, 1200 posts.
    /// - `tbib` (gelbooru_v02, XML tags): `anya_(spy_x_family)` on 500..1500 and
    ///   3200..3400, 1200 posts; `forger_anya` on 3400..3412, 12 posts.
    /// - `yandere` (moebooru): `anya_forger` on 1000..1300 and 4000..4300, 600 posts.
    /// - `konachan` (moebooru, reduced fields, all rated safe): `anya_forger` on
    ///   1200..1350 and 4200..4450, 400 posts.
    ///
    /// The union of Anya images is 2362 distinct MD5s (0..1500, 3000..3412, 4000..4450);
    /// images 1200..1300 are on all six sources. Images 1200..1500 also show Yor
    /// (`yor_briar`, on Moebooru `yor_forger`), whose solo posts use images 5000..5400.
    ///
    /// Traps: `anya_(hoshikuzu_academy)` (a character of another work) reports 1900 posts
    /// on Danbooru (none served) and 2300 on Gelbooru (120 served, images 20000..20120),
    /// with 60 real posts on Safebooru; `anya_hoshino` reports 800 on Yande.re (none
    /// served); `anya_starling` (a name-sharing idol, series `neon_idols`) has real posts
    /// on Danbooru, Gelbooru, TBIB and Yande.re (images 21000..); cosplay variants
    /// `anya_(spy_x_family)_(cosplay)` / `anya_forger_(cosplay)` use images 6000..6130.
    ///
    /// Recorded fixtures are served besides: Danbooru 20 posts, Gelbooru 10, Safebooru 1,
    /// Yande.re 1, Konachan 10.
    pub fn standard() -> World {
        let mut world = World::new();
        safebooru(&mut world);
        danbooru(&mut world);
        gelbooru(&mut world);
        yandere(&mut world);
        konachan(&mut world);
        tbib(&mut world);
        world
    }
}

impl World {
    /// The standard world's sources and tag names with `posts_per_source` Anya posts on
    /// every source, for benchmarks that need many full pages (the scripts in `scripts/`).
    ///
    /// Source `k` (in the order safebooru, danbooru, gelbooru, yandere, konachan, tbib)
    /// holds images `k * n / 4 .. k * n / 4 + n` with `n = posts_per_source`, so the union
    /// is `9n / 4` distinct MD5s (`n` rounded down to a multiple of 4) and most images are
    /// on two to four sources. One post in four also shows Yor. Tag discovery chooses the
    /// same tags as in the standard world; no fixtures, traps or restricted posts. Every
    /// post also carries the general tags of `FILLER`, so its body is as long as a real one.
    pub fn big(posts_per_source: u64) -> World {
        let n = posts_per_source;
        let ids = [
            ("safebooru", SimFamily::GelbooruV02),
            ("danbooru", SimFamily::Danbooru),
            ("gelbooru", SimFamily::Gelbooru),
            ("yandere", SimFamily::Moebooru),
            ("konachan", SimFamily::Moebooru),
            ("tbib", SimFamily::GelbooruV02),
        ];
        let mut world = World::new();
        for (k, (id, family)) in (0u64..).zip(ids) {
            let start = k * (n / 4);
            big_source(&mut world, id, family, start..start + n);
        }
        world
    }
}

/// One source of [`World::big`]: Anya on `images`, alone or with Yor.
fn big_source(world: &mut World, id: &str, family: SimFamily, images: Range<u64>) {
    let (solo, pair): (&[&str], &[&str]) = match family {
        SimFamily::Moebooru => {
            moebooru_names(world, id);
            (
                &[ANYA_MOE, SERIES, "pink_hair", "school_uniform"],
                &[ANYA_MOE, "yor_forger", SERIES, "dress"],
            )
        }
        _ => {
            danbooru_names(world, id, family);
            (ANYA_SOLO, ANYA_YOR)
        }
    };
    let (solo, pair) = ([solo, FILLER].concat(), [pair, FILLER].concat());
    let source = world.source(id, family).tag_format_xml(id == "tbib");
    let mut start = images.start;
    while start < images.end {
        let end = (start + 100).min(images.end);
        let split = start + (end - start) * 3 / 4;
        source.posts(start..split, &solo).posts(split..end, &pair);
        start = end;
    }
}

/// General tags every post of [`World::big`] carries besides its characters, so that its
/// posts are as long as real ones (30 to 40 tags on a typical post) and a memory benchmark
/// parses and stores bodies of a realistic size. None of them names a character.
const FILLER: &[&str] = &[
    "looking_at_viewer",
    "blush",
    "smile",
    "open_mouth",
    "short_hair",
    "long_sleeves",
    "simple_background",
    "white_background",
    "closed_mouth",
    "hair_ornament",
    "upper_body",
    "full_body",
    "standing",
    "holding",
    "dress",
    "black_dress",
    "child",
    "female_child",
    "cone_hair_bun",
    "hair_bun",
    "double_bun",
    "eden_academy_school_uniform",
    "school_uniform",
    "white_socks",
    "highres",
    "absurdres",
    "commentary_request",
];

const ANYA_SOLO: &[&str] = &[
    ANYA,
    SERIES,
    "1girl",
    "pink_hair",
    "green_eyes",
    "hairpods",
    "solo",
];
const ANYA_YOR: &[&str] = &[
    ANYA,
    "yor_briar",
    SERIES,
    "multiple_girls",
    "mother_and_daughter",
];
const YOR_SOLO: &[&str] = &["yor_briar", SERIES, "1girl", "black_hair", "red_eyes"];
const COSPLAY: &[&str] = &["anya_(spy_x_family)_(cosplay)", SERIES, "cosplay", "1girl"];
const STARLING: &[&str] = &["anya_starling", "neon_idols", "1girl", "virtual_youtuber"];
const HOSHIKUZU: &[&str] = &["anya_(hoshikuzu_academy)", "hoshikuzu_academy", "1girl"];

/// Anya and friends with Danbooru's names and categories.
fn danbooru_names(world: &mut World, id: &str, family: SimFamily) {
    world
        .source(id, family)
        .tag(ANYA, 4)
        .tag("yor_briar", 4)
        .tag("loid_forger", 4)
        .tag("anya_(spy_x_family)_(cosplay)", 4)
        .tag("anya_starling", 4)
        .tag("anya_(hoshikuzu_academy)", 4)
        .tag(SERIES, 3)
        .tag("neon_idols", 3)
        .tag("hoshikuzu_academy", 3)
        .tag("highres", 5);
}

fn danbooru(world: &mut World) {
    danbooru_names(world, "danbooru", SimFamily::Danbooru);
    let restricted = |i: u64| PostSpec {
        restricted: i % 50 == 7,
        ..PostSpec::for_image(i)
    };
    world
        .source("danbooru", SimFamily::Danbooru)
        .fixture_posts(include_str!(
            "../../tests/fixtures/danbooru/posts_2020.json"
        ))
        .fixture_posts(include_str!("../../tests/fixtures/danbooru/posts.json"))
        .posts_with(0..1200, &[ANYA_SOLO, &["highres"]].concat(), restricted)
        .posts_with(1200..1500, ANYA_YOR, restricted)
        .posts(5000..5300, YOR_SOLO)
        .posts(5500..5560, &["loid_forger", SERIES, "1boy", "suit"])
        .posts(6000..6040, COSPLAY)
        .posts(21000..21150, STARLING)
        .tag_count("anya_(hoshikuzu_academy)", 4, 1900)
        .alias("anya_forger", ANYA)
        .alias("yor_forger", "yor_briar");
}

fn gelbooru(world: &mut World) {
    danbooru_names(world, "gelbooru", SimFamily::Gelbooru);
    world
        .source("gelbooru", SimFamily::Gelbooru)
        .fixture_posts(include_str!("../../tests/fixtures/gelbooru/posts.json"))
        .posts(200..1200, ANYA_SOLO)
        .posts(1200..1500, ANYA_YOR)
        .posts(3000..3200, ANYA_SOLO)
        .posts(5000..5400, YOR_SOLO)
        .posts(6000..6060, COSPLAY)
        .posts(20000..20120, HOSHIKUZU)
        .posts(21000..21200, STARLING)
        .tag_count("anya_(hoshikuzu_academy)", 4, 2300);
}

fn safebooru(world: &mut World) {
    danbooru_names(world, "safebooru", SimFamily::GelbooruV02);
    let general = |i: u64| PostSpec {
        rating: Rating::General,
        ..PostSpec::for_image(i)
    };
    world
        .source("safebooru", SimFamily::GelbooruV02)
        .fixture_posts(include_str!(
            "../../tests/fixtures/safebooru/post_by_id.json"
        ))
        .posts_with(0..900, ANYA_SOLO, general)
        .posts_with(1200..1300, ANYA_YOR, general)
        .posts_with(3100..3300, ANYA_SOLO, general)
        .posts_with(5000..5200, YOR_SOLO, general)
        .posts_with(6000..6020, COSPLAY, general)
        .posts_with(20000..20060, HOSHIKUZU, general);
}

fn tbib(world: &mut World) {
    danbooru_names(world, "tbib", SimFamily::GelbooruV02);
    world
        .source("tbib", SimFamily::GelbooruV02)
        .tag_format_xml(true)
        .tag("forger_anya", 4)
        .posts(500..1200, ANYA_SOLO)
        .posts(1200..1500, ANYA_YOR)
        .posts(3200..3400, ANYA_SOLO)
        .posts(3400..3412, &["forger_anya", SERIES, "1girl"])
        .posts(5100..5300, YOR_SOLO)
        .posts(6000..6030, COSPLAY)
        .posts(21000..21100, STARLING);
}

/// Anya and friends with Moebooru's names.
fn moebooru_names(world: &mut World, id: &str) {
    world
        .source(id, SimFamily::Moebooru)
        .tag(ANYA_MOE, 4)
        .tag("yor_forger", 4)
        .tag("anya_forger_(cosplay)", 4)
        .tag("anya_starling", 4)
        .tag(SERIES, 3)
        .tag("neon_idols", 3);
}

fn yandere(world: &mut World) {
    moebooru_names(world, "yandere");
    world
        .source("yandere", SimFamily::Moebooru)
        .fixture_posts(include_str!("../../tests/fixtures/yandere/post.json"))
        .posts(
            1000..1200,
            &[ANYA_MOE, SERIES, "pink_hair", "school_uniform"],
        )
        .posts(1200..1300, &[ANYA_MOE, "yor_forger", SERIES, "dress"])
        .posts(4000..4300, &[ANYA_MOE, SERIES, "pink_hair"])
        .posts(5000..5150, &["yor_forger", SERIES, "dress", "weapon"])
        .posts(6100..6130, &["anya_forger_(cosplay)", SERIES, "cosplay"])
        .posts(21000..21040, &["anya_starling", "neon_idols"])
        .tag_count("anya_hoshino", 4, 800);
}

fn konachan(world: &mut World) {
    moebooru_names(world, "konachan");
    let safe = |i: u64| PostSpec {
        rating: Rating::General,
        ..PostSpec::for_image(i)
    };
    world
        .source("konachan", SimFamily::Moebooru)
        .fixture_posts(include_str!("../../tests/fixtures/konachan/posts.json"))
        .posts_with(1200..1350, &[ANYA_MOE, SERIES, "pink_hair"], safe)
        .posts_with(4200..4450, &[ANYA_MOE, SERIES, "pink_hair", "scenic"], safe)
        .posts_with(5000..5050, &["yor_forger", SERIES, "dress"], safe);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::catalog::SourceData;

    fn anya_md5s(world: &World) -> HashSet<String> {
        let sources = world.sources.iter().cloned().map(SourceData::build);
        let anya_tags = [ANYA, ANYA_MOE, "forger_anya"];
        sources
            .flat_map(|s| s.posts)
            .filter(|p| anya_tags.iter().any(|t| p.has_tag(t)))
            .filter_map(|p| p.md5)
            .collect()
    }

    #[test]
    fn documented_numbers_hold() {
        let world = World::standard();
        assert_eq!(world.source_ids().len(), 6);
        assert_eq!(anya_md5s(&world).len(), 2362);
        let counts: Vec<(String, u64)> = (world.sources.iter().cloned().map(SourceData::build))
            .map(|s| {
                let tag = s
                    .tags
                    .iter()
                    .find(|t| t.name == ANYA || t.name == ANYA_MOE)
                    .unwrap();
                (s.id.clone(), tag.count)
            })
            .collect();
        let expected = [
            ("safebooru", 1200),
            ("danbooru", 1500),
            ("gelbooru", 1500),
            ("yandere", 600),
            ("konachan", 400),
            ("tbib", 1200),
        ];
        assert_eq!(counts, expected.map(|(s, n)| (s.to_owned(), n)));
    }

    #[test]
    fn the_big_world_has_its_documented_size() {
        let world = World::big(1000);
        assert_eq!(world.source_ids().len(), 6);
        assert_eq!(anya_md5s(&world).len(), 2250);
        for source in world.sources.iter().cloned().map(SourceData::build) {
            assert_eq!(source.posts.len(), 1000, "{}", source.id);
        }
    }
}
