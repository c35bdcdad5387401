//! Danbooru as the simulator serves it: pages, cursors, the page and tag limits, counts,
//! tag search, aliases, restricted posts and recorded posts.

mod support;

use anya_sim::{PostSpec, SimFamily, SimHandle, Simulator, World, image_md5};
use serde_json::Value;
use support::{fixture_keys, get, ids, keys};

const RECORDED: &str = include_str!("../../tests/fixtures/danbooru/posts.json");
const ANYA: &str = "anya_(spy_x_family)";

/// 450 plain Anya posts, 10 restricted ones, 10 of Yor, a popular colliding tag that
/// serves nothing, one alias and the ten recorded posts.
async fn start() -> SimHandle {
    let mut world = World::new();
    let restricted = |i| PostSpec {
        restricted: true,
        ..PostSpec::for_image(i)
    };
    world
        .source("danbooru", SimFamily::Danbooru)
        .tag(ANYA, 4)
        .tag("spy_x_family", 3)
        .tag("yor_briar", 4)
        .tag("highres", 5)
        .posts(0..450, &[ANYA, "spy_x_family", "1girl", "highres"])
        .posts_with(450..460, &[ANYA, "solo"], restricted)
        .posts(1000..1010, &["yor_briar", "spy_x_family"])
        .tag_count("anya_(hoshikuzu_academy)", 4, 5000)
        .alias("yor_forger", "yor_briar")
        .fixture_posts(RECORDED);
    Simulator::start(world).await.expect("simulator starts")
}

async fn posts(sim: &SimHandle, query: &str) -> Value {
    let answer = get(&format!("{}/posts.json?{query}", sim.base_url("danbooru"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

#[tokio::test]
async fn pages_are_newest_first_and_limit_is_clamped() {
    let sim = start().await;
    let tags = "tags=anya_(spy_x_family)";
    let first = ids(&posts(&sim, &format!("{tags}&limit=500&page=1")).await);
    assert_eq!(first.len(), 200, "limit is clamped to 200");
    assert!(first.windows(2).all(|w| w[0] > w[1]));
    let third = ids(&posts(&sim, &format!("{tags}&limit=200&page=3")).await);
    assert_eq!(third.len(), 60);
    assert!(third[0] < *first.last().unwrap());
    let default = ids(&posts(&sim, tags).await);
    assert_eq!(default.len(), 20, "default page size");
    let zero = posts(&sim, &format!("{tags}&page=0")).await;
    assert_eq!(ids(&zero), default, "page 0 is page 1");
    let past = posts(&sim, &format!("{tags}&page=1000")).await;
    assert_eq!(past, Value::Array(vec![]), "an empty page is []");
}

#[tokio::test]
async fn cursors_walk_by_id() {
    let sim = start().await;
    let first = ids(&posts(&sim, "tags=anya_(spy_x_family)&limit=100").await);
    let pivot = first[49];
    let before = ids(&posts(
        &sim,
        &format!("tags=anya_(spy_x_family)&limit=10&page=b{pivot}"),
    )
    .await);
    assert_eq!(before, first[50..60]);
    let after = ids(&posts(
        &sim,
        &format!("tags=anya_(spy_x_family)&limit=10&page=a{pivot}"),
    )
    .await);
    assert_eq!(after, first[39..49]);
}

#[tokio::test]
async fn deep_pages_get_410() {
    let sim = start().await;
    let answer = get(&format!(
        "{}/posts.json?tags=yor_briar&page=1001",
        sim.base_url("danbooru")
    ))
    .await;
    assert_eq!(answer.status, 410);
    let expected = concat!(
        r#"{"success":false,"error":"PaginationExtension::PaginationError","#,
        r#""message":"You cannot go beyond page 1000."}"#
    );
    assert_eq!(
        answer.json(),
        serde_json::from_str::<Value>(expected).unwrap()
    );
}

#[tokio::test]
async fn more_than_two_counted_terms_get_422() {
    let sim = start().await;
    let base = sim.base_url("danbooru");
    for tags in [
        "anya_(spy_x_family)+spy_x_family+1girl",
        "anya_(spy_x_family)+spy_x_family+order:score",
        "anya_(spy_x_family)+-solo+-1girl",
    ] {
        for path in ["posts.json", "counts/posts.json"] {
            let answer = get(&format!("{base}/{path}?tags={tags}")).await;
            assert_eq!(answer.status, 422, "{path} {tags}");
            assert_eq!(answer.json()["error"], "PostQuery::TagLimitError");
            let message = "You cannot search for more than 2 tags at a time.";
            assert_eq!(answer.json()["message"], message);
        }
    }
    let free = "anya_(spy_x_family)+spy_x_family+rating:g,s,q,e+-status:deleted+id:>0+limit:5";
    assert_eq!(ids(&posts(&sim, &format!("tags={free}")).await).len(), 5);
}

#[tokio::test]
async fn counts_follow_the_search() {
    let sim = start().await;
    let base = sim.base_url("danbooru");
    let count = get(&format!(
        "{base}/counts/posts.json?tags=anya_(spy_x_family)"
    ))
    .await;
    assert_eq!(
        count.json(),
        serde_json::json!({ "counts": { "posts": 460 } })
    );
    let none = get(&format!(
        "{base}/counts/posts.json?tags=anya_(hoshikuzu_academy)"
    ))
    .await;
    assert_eq!(
        none.json()["counts"]["posts"],
        0,
        "a counted tag serves nothing"
    );
}

#[tokio::test]
async fn tag_search_orders_by_count_and_filters() {
    let sim = start().await;
    let base = sim.base_url("danbooru");
    let query = concat!(
        "search[name_matches]=*anya*&search[order]=count&search[category]=4",
        "&search[hide_empty]=true&limit=10"
    );
    let tags = get(&format!("{base}/tags.json?{query}")).await.json();
    let names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anya_(hoshikuzu_academy)", ANYA]);
    assert_eq!(tags[0]["post_count"], 5000);
    assert_eq!(tags[1]["post_count"], 460);
    let fields = [
        "category",
        "created_at",
        "id",
        "is_deprecated",
        "name",
        "post_count",
        "updated_at",
    ];
    assert_eq!(
        keys(&tags[0]),
        fields.iter().map(|s| s.to_string()).collect()
    );

    let exact = get(&format!(
        "{base}/tags.json?search[name]=yor_briar,spy_x_family"
    ))
    .await
    .json();
    assert_eq!(exact.as_array().unwrap().len(), 2);
    let shown = get(&format!("{base}/tags.json?search[name_matches]=yor_*"))
        .await
        .json();
    assert_eq!(
        shown.as_array().unwrap().len(),
        2,
        "the alias antecedent exists, empty"
    );
    let hidden = get(&format!(
        "{base}/tags.json?search[name_matches]=yor_*&search[hide_empty]=true"
    ))
    .await;
    assert_eq!(hidden.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn aliases_are_listed_and_resolved() {
    let sim = start().await;
    let base = sim.base_url("danbooru");
    let query = "search[antecedent_name]=yor_forger&search[status]=active";
    let aliases = get(&format!("{base}/tag_aliases.json?{query}"))
        .await
        .json();
    assert_eq!(aliases[0]["consequent_name"], "yor_briar");
    assert_eq!(aliases[0]["status"], "active");
    let none = get(&format!(
        "{base}/tag_aliases.json?search[antecedent_name]=anya"
    ))
    .await
    .json();
    assert_eq!(none, Value::Array(vec![]));
    assert_eq!(ids(&posts(&sim, "tags=yor_forger").await).len(), 10);
}

#[tokio::test]
async fn generated_posts_have_the_recorded_field_set() {
    let sim = start().await;
    let page = posts(&sim, "tags=anya_(spy_x_family)+-solo&limit=1").await;
    let post = &page[0];
    assert_eq!(keys(post), fixture_keys(RECORDED));
    assert_eq!(post["tag_string_character"], ANYA);
    assert_eq!(post["tag_string_copyright"], "spy_x_family");
    assert_eq!(post["tag_string_meta"], "highres");
    assert_eq!(post["md5"], image_md5(449));
    assert!(
        post["file_url"]
            .as_str()
            .unwrap()
            .starts_with(&sim.base_url("danbooru"))
    );
    assert!(["g", "s", "q", "e"].contains(&post["rating"].as_str().unwrap()));
}

#[tokio::test]
async fn restricted_posts_lack_md5_and_files() {
    let sim = start().await;
    let page = posts(&sim, "tags=anya_(spy_x_family)+solo").await;
    assert_eq!(page.as_array().unwrap().len(), 10);
    for post in page.as_array().unwrap() {
        for hidden in ["md5", "file_url", "large_file_url", "preview_file_url"] {
            assert!(post.get(hidden).is_none(), "{hidden} must be absent");
        }
    }
}

#[tokio::test]
async fn single_posts_and_unknown_paths() {
    let sim = start().await;
    let base = sim.base_url("danbooru");
    let one = get(&format!("{base}/posts/6148688.json")).await;
    assert_eq!(one.json()["md5"], "dc123eec97d06c3aa9cd53d65a2c7abf");
    let missing = get(&format!("{base}/posts/1.json")).await;
    assert_eq!(
        (missing.status, missing.json()["success"].clone()),
        (404, Value::Bool(false))
    );
    let unknown = get(&format!("{base}/post.json")).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"].is_string());
}

#[tokio::test]
async fn recorded_posts_are_served_verbatim_by_their_tags() {
    let sim = start().await;
    let found = posts(&sim, "tags=lady_zuri").await;
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    assert_eq!(found, Value::Array(vec![recorded[0].clone()]));
    let tags = get(&format!(
        "{}/tags.json?search[name]=lady_zuri",
        sim.base_url("danbooru")
    ))
    .await;
    assert_eq!(
        tags.json()[0]["category"],
        4,
        "categories come from tag_string_character"
    );
}

#[tokio::test]
async fn wrong_credentials_get_401_but_anonymous_reads_work() {
    let mut world = World::new();
    world
        .source("danbooru", SimFamily::Danbooru)
        .require_credentials("anya", "peanuts")
        .posts(0..3, &["x"]);
    let sim = Simulator::start(world).await.unwrap();
    let base = sim.base_url("danbooru");
    assert_eq!(get(&format!("{base}/posts.json")).await.status, 200);
    assert_eq!(
        get(&format!("{base}/posts.json?login=anya&api_key=peanuts"))
            .await
            .status,
        200
    );
    let wrong = get(&format!("{base}/posts.json?login=anya&api_key=carrots")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["message"], "Invalid API key");
    assert_eq!(
        get(&format!("{base}/posts.json?login=anya")).await.status,
        401
    );
}
