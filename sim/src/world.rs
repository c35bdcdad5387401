//! The world a simulator serves: named sources, each of one API family, with their tags,
//! aliases, posts and server-side settings, assembled with builder calls before start.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::post::{Post, PostSpec};
use crate::recorded;

/// The API family a simulated source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimFamily {
    /// Danbooru 2: `/posts.json`, bare arrays, 1-based pages.
    Danbooru,
    /// Gelbooru 0.2.5: `index.php?page=dapi`, the `@attributes` envelope, 0-based `pid`.
    Gelbooru,
    /// Gelbooru 0.2 (Safebooru, TBIB): bare arrays, `hash`, empty body when nothing matches.
    GelbooruV02,
    /// Moebooru (Yande.re, Konachan): `/post.json`, bare arrays, 1-based pages.
    Moebooru,
}

impl SimFamily {
    /// The family's name as the service's configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SimFamily::Danbooru => "danbooru",
            SimFamily::Gelbooru => "gelbooru",
            SimFamily::GelbooruV02 => "gelbooru_v02",
            SimFamily::Moebooru => "moebooru",
        }
    }

    /// The server-side clamp of `limit` the real sites apply.
    pub fn default_max_limit(self) -> u32 {
        match self {
            SimFamily::Danbooru => 200,
            SimFamily::Gelbooru => 100,
            SimFamily::GelbooruV02 | SimFamily::Moebooru => 1000,
        }
    }

    /// How deep into a search's results the site serves pages: the Gelbooru families stop
    /// at about 20 000 results (`None`: no such ceiling).
    pub fn default_max_depth(self) -> Option<usize> {
        match self {
            SimFamily::Gelbooru | SimFamily::GelbooruV02 => Some(20_000),
            SimFamily::Danbooru | SimFamily::Moebooru => None,
        }
    }

    /// The page size used when a request names no `limit`.
    pub fn default_limit(self) -> u32 {
        match self {
            SimFamily::Danbooru => 20,
            SimFamily::Gelbooru | SimFamily::GelbooruV02 => 100,
            SimFamily::Moebooru => 40,
        }
    }

    /// Where generated post ids start, near the real sites' current ids.
    fn first_post_id(self) -> u64 {
        match self {
            SimFamily::Danbooru => 7_000_001,
            SimFamily::Gelbooru => 9_000_001,
            SimFamily::GelbooruV02 => 5_000_001,
            SimFamily::Moebooru => 1_100_001,
        }
    }
}

/// All data the simulator serves, per source id.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub(crate) sources: Vec<SimSource>,
}

impl World {
    /// A world with no sources; every request then answers 404.
    pub fn new() -> World {
        World::default()
    }

    /// The source with this id, created empty with `family` if it does not exist yet.
    ///
    /// An existing source keeps the family it was created with.
    pub fn source(&mut self, id: &str, family: SimFamily) -> &mut SimSource {
        let at = match self.sources.iter().position(|s| s.id == id) {
            Some(at) => at,
            None => {
                self.sources.push(SimSource::new(id, family));
                self.sources.len() - 1
            }
        };
        &mut self.sources[at]
    }

    /// The ids of the sources, in the order they were created.
    pub fn source_ids(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.id.clone()).collect()
    }
}

/// A tag declared with [`SimSource::tag`] or [`SimSource::tag_count`].
#[derive(Debug, Clone)]
pub(crate) struct DeclaredTag {
    pub category: u8,
    /// A post count reported regardless of the posts served.
    pub post_count: Option<u64>,
}

/// One simulated site: its family, data and server-side settings.
///
/// Builder methods return `&mut Self` so a source reads as one chain. Generated post ids
/// start at a family-typical number and count up in the order posts are added, so later
/// posts are newer; [`SimSource::next_post_id`] moves the counter.
#[derive(Debug, Clone)]
pub struct SimSource {
    pub(crate) id: String,
    pub(crate) family: SimFamily,
    pub(crate) declared: Vec<(String, DeclaredTag)>,
    pub(crate) declared_index: HashMap<String, usize>,
    pub(crate) aliases: Vec<(String, String)>,
    pub(crate) posts: Vec<Post>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) max_limit: u32,
    pub(crate) max_depth: Option<usize>,
    pub(crate) tag_format_xml: bool,
    pub(crate) relative_urls: bool,
    pub(crate) reduced_fields: bool,
    next_id: u64,
}

impl SimSource {
    fn new(id: &str, family: SimFamily) -> SimSource {
        SimSource {
            id: id.to_owned(),
            family,
            declared: Vec::new(),
            declared_index: HashMap::new(),
            aliases: Vec::new(),
            posts: Vec::new(),
            credentials: None,
            max_limit: family.default_max_limit(),
            max_depth: family.default_max_depth(),
            tag_format_xml: false,
            relative_urls: false,
            reduced_fields: id.contains("konachan"),
            next_id: family.first_post_id(),
        }
    }

    /// The source's id, which is also its path prefix.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The source's API family.
    pub fn family(&self) -> SimFamily {
        self.family
    }

    /// Declares a tag's category (0 general, 1 artist, 3 copyright, 4 character, 5 meta);
    /// tags used by posts but never declared are general. Its post count is the number
    /// of posts that carry it.
    pub fn tag(&mut self, name: &str, category: u8) -> &mut Self {
        self.declare(name, category, None)
    }

    /// Declares a tag whose reported post count is `post_count` whatever posts are served,
    /// e.g. a popular colliding tag whose posts are not part of the world. Post searches
    /// for it return only the posts that really carry it.
    pub fn tag_count(&mut self, name: &str, category: u8, post_count: u64) -> &mut Self {
        self.declare(name, category, Some(post_count))
    }

    fn declare(&mut self, name: &str, category: u8, post_count: Option<u64>) -> &mut Self {
        let tag = DeclaredTag {
            category,
            post_count,
        };
        match self.declared_index.get(name) {
            Some(&at) => self.declared[at].1 = tag,
            None => {
                self.declared_index
                    .insert(name.to_owned(), self.declared.len());
                self.declared.push((name.to_owned(), tag));
            }
        }
        self
    }

    /// Adds an active Danbooru tag alias: searches for `antecedent` find `consequent`'s
    /// posts, and `/tag_aliases.json` lists the pair.
    pub fn alias(&mut self, antecedent: &str, consequent: &str) -> &mut Self {
        self.aliases
            .push((antecedent.to_owned(), consequent.to_owned()));
        self
    }

    /// Adds one generated post per image index in `images`, each tagged `tags`, with the
    /// spec [`PostSpec::for_image`] derives.
    pub fn posts(&mut self, images: Range<u64>, tags: &[&str]) -> &mut Self {
        self.posts_with(images, tags, PostSpec::for_image)
    }

    /// Adds one generated post per image index in `images`, each tagged `tags`, with the
    /// spec `spec` returns for the image.
    pub fn posts_with(
        &mut self,
        images: Range<u64>,
        tags: &[&str],
        spec: impl Fn(u64) -> PostSpec,
    ) -> &mut Self {
        for image in images {
            let id = self.take_post_id();
            self.posts
                .push(Post::generated(id, image, tags, spec(image)));
        }
        self
    }

    /// Serves the post objects of a recorded response body verbatim: a bare array, a
    /// Gelbooru envelope (`{"@attributes":…,"post":[…]}`), a Moebooru API-v2 object
    /// (`{"posts":[…]}`) or one post object. They are found by the tags in their
    /// `tag_string` or `tags`; Danbooru's per-category strings declare tag categories.
    ///
    /// # Panics
    ///
    /// When the body is not JSON of one of those shapes, since a world is test setup.
    pub fn fixture_posts(&mut self, recorded_json: &str) -> &mut Self {
        let loaded = recorded::parse(recorded_json)
            .unwrap_or_else(|e| panic!("fixture_posts for {}: {e}", self.id));
        for (post, categories) in loaded {
            for (name, category) in categories {
                if !self.declared_index.contains_key(&name) {
                    self.tag(&name, category);
                }
            }
            self.next_id = self.next_id.max(post.id + 1);
            self.posts.push(post);
        }
        self
    }

    /// Requires an account: Gelbooru answers 401 with body `[]` when `user_id`/`api_key`
    /// are missing or wrong; Gelbooru 0.2 answers 200 with an XML `<error>` document like
    /// its sister engine on rule34.xxx; Danbooru (`login`/`api_key`) and Moebooru
    /// (`login`/`password_hash`) stay open to anonymous requests, as the real sites are,
    /// and answer 401 / 403 only when credentials are given and wrong.
    pub fn require_credentials(&mut self, user: &str, api_key: &str) -> &mut Self {
        self.credentials = Some((user.to_owned(), api_key.to_owned()));
        self
    }

    /// Sets the server-side clamp of `limit` (defaults: Danbooru 200, Gelbooru 100,
    /// Gelbooru 0.2 and Moebooru 1000).
    pub fn max_limit(&mut self, n: u32) -> &mut Self {
        self.max_limit = n.max(1);
        self
    }

    /// Sets how deep into a search's results pages are served (Gelbooru families only;
    /// default 20 000); a page reaching past it gets an empty body, as the real sites
    /// answer, or no ceiling with `None`.
    pub fn max_depth(&mut self, depth: Option<usize>) -> &mut Self {
        self.max_depth = depth;
        self
    }

    /// Gelbooru 0.2 only: the tag API answers XML `<tags><tag …/></tags>` even when
    /// `json=1` is asked for, instead of a bare JSON array.
    pub fn tag_format_xml(&mut self, yes: bool) -> &mut Self {
        self.tag_format_xml = yes;
        self
    }

    /// Makes a third of the generated posts' image URLs relative (`/data/...`) and a
    /// third protocol-relative (`//127.0.0.1:PORT/<source>/data/...`), to exercise a
    /// client's URL absolutisation. Off by default.
    pub fn relative_urls(&mut self, yes: bool) -> &mut Self {
        self.relative_urls = yes;
        self
    }

    /// Moebooru only: print generated posts with Konachan's reduced field set (no
    /// `updated_at`, `approver_id`, `file_ext`, ...). On by default for source ids
    /// containing `konachan`.
    pub fn reduced_fields(&mut self, yes: bool) -> &mut Self {
        self.reduced_fields = yes;
        self
    }

    /// Sets the id the next generated post gets; later posts count up from it.
    pub fn next_post_id(&mut self, id: u64) -> &mut Self {
        self.next_id = id;
        self
    }

    fn take_post_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
