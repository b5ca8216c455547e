// opossum 10 ships no types; its API is opossum 9's (as @types/opossum describes it) for what the bench uses.
declare module "opossum-10" {
  import Opossum from "opossum"
  export default Opossum
}
