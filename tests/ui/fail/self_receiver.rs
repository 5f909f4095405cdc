use crux::prelude::*;

pub struct Service;

impl Service {
    #[crux::query]
    pub async fn get(&self, _ctx: &QueryCtx) -> crux::Result<()> {
        Ok(())
    }
}

fn main() {}
