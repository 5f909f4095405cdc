//! A crate that renames its crux dependency points the macros at the new name.
extern crate crux as my_crux;

use my_crux::prelude::*;

#[my_crux::action(name = "renamed", root = "agent.run", crate = "my_crux")]
pub async fn respond(_ctx: &ActionCtx) -> my_crux::Result<u32> {
    Ok(1)
}

#[my_crux::query(crate = "my_crux")]
pub async fn list(_ctx: &QueryCtx, args: Vec<String>) -> my_crux::Result<Vec<String>> {
    Ok(args)
}

mod nested {
    use my_crux::prelude::*;

    #[my_crux::internal_mutation(crate = "my_crux")]
    pub async fn save(_ctx: &MutationCtx) -> my_crux::Result<()> {
        Ok(())
    }
}

mod aliased {
    // `crate = ".."` naming a `use` alias of this module: the generated
    // `use <crate>::__private as ..` inside `const _` resolves it from here.
    use my_crux as local_crux;
    use local_crux::prelude::*;

    #[local_crux::query(crate = "local_crux")]
    pub async fn count(_ctx: &QueryCtx) -> local_crux::Result<u32> {
        Ok(0)
    }
}

fn main() {
    let _ = <respond as my_crux::function::Function>::path();
    let _ = nested::save;
    let _ = <aliased::count as my_crux::function::Function>::path();
}
