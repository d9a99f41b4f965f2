/**
 * @tokenbank/react — tokenbank's widgets for any React app, made from tokenbank's own web
 * client components:
 *
 *   <TokenbankProvider baseUrl="https://tokens.example.com" token={fetchCustomerToken}>
 *     <TokenBalance />
 *     <BuyTokens />
 *     <OutOfTokens balance={2} required={5} />
 *   </TokenbankProvider>
 *
 * The token is a short-lived customer token your server signs for the signed-in person
 * (`customer_token` in the Python SDK); add `@tokenbank/react/styles.css` once.
 */
export { BuyTokens, type BuyTokensProps } from "./BuyTokens";
export { OutOfTokens, outOfTokensProps, type OutOfTokensProps } from "./OutOfTokens";
export { TokenBalance, type TokenBalanceProps } from "./TokenBalance";
export { TokenbankProvider, useTokenbank, type TokenbankProviderProps, type TokenbankState } from "./context";
