//! The application state shared by every request: configuration, driver, search service.

use std::sync::Arc;

use crate::config::Config;
use crate::search::SearchService;
use crate::sources::driver::Driver;

/// Everything a request handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub driver: Arc<Driver>,
    pub search: Arc<SearchService>,
}

impl AppState {
    /// Builds the driver and the search service from a validated configuration.
    pub fn new(config: Config) -> Result<AppState, reqwest::Error> {
        let config = Arc::new(config);
        let driver = Arc::new(Driver::new(&config)?);
        let search = Arc::new(SearchService::new(config.clone(), driver.clone()));
        Ok(AppState {
            config,
            driver,
            search,
        })
    }
}
