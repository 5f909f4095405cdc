#[crux::mutation]
pub async fn save() -> crux::Result<()> {
    Ok(())
}

fn main() {}
