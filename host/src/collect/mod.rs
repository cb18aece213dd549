pub mod exposition;
pub mod scrape;
