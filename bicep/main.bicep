// Platform on Azure: a Flex Consumption function app running the ASP.NET Core server as a custom handler,
// one storage account reached only through a managed identity, Application Insights with Entra-only
// ingestion, and a Key Vault (RBAC mode) for the signing and encryption keys.
//
//   azd up                       provisions this template (bicep/main.parameters.json) and deploys the app
//   infra/bicep.sh               builds and lints it here, with every linter warning treated as an error
//
// The modules are written in this repository (the public module registry cannot be reached from every build
// machine); their choices follow the Azure Verified Modules for the same resources.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd environment name). It names the resource group and seeds a short unique token in every resource name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. It must offer Flex Consumption: az functionapp list-flexconsumption-locations.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Most instances the function app scales out to (Flex Consumption allows up to 1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each function app instance in MB. 2048 suits most loads; 4096 doubles CPU for heavy imports and reports.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Always-ready instances of the HTTP group. At least 1: the durable worker runs inside the app, and the scale controller cannot see the task hub queues of a custom handler, so with no instance up, queued jobs would wait for the next HTTP request or timer.')
@minValue(1)
@maxValue(20)
param alwaysReadyInstances int = 1

@description('Object ID of the person or pipeline running the deployment; it gets Key Vault Secrets Officer on the vault so it can set and rotate the secrets. azd fills it in; empty for none.')
param principalId string = ''

@description('Kind of principalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Resource group to create or reuse; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Use this existing storage account instead of creating one (it keeps its own settings; containers, queues and role assignments are added). Empty: create a new account.')
param existingStorageAccountName string = ''

@description('Resource group of existingStorageAccountName; empty: the environment\'s resource group.')
param existingStorageAccountResourceGroupName string = ''

@description('Replication of a new storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Key Vault purge protection (recommended; it cannot be turned off again). Turn it off only for throwaway environments that must be purged right away by azd down --purge.')
param keyVaultPurgeProtection bool = true

@description('External base URL for links in mail and webhook receiver URLs (a custom domain). Empty: the function app\'s https default host name.')
param publicBaseUrl string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'platform'
}
var useExistingStorage = !empty(existingStorageAccountName)
var groupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var storageGroupName = useExistingStorage && !empty(existingStorageAccountResourceGroupName)
  ? existingStorageAccountResourceGroupName
  : groupName
var names = {
  identity: 'id-platform-${resourceToken}'
  storage: useExistingStorage ? existingStorageAccountName : 'stplatform${resourceToken}'
  logAnalytics: 'log-platform-${resourceToken}'
  applicationInsights: 'appi-platform-${resourceToken}'
  keyVault: 'kv-plat-${resourceToken}'
  plan: 'plan-platform-${resourceToken}'
  functionApp: 'func-platform-${resourceToken}'
}

// Queues the queue functions consume (see functions/Platform.Functions/Triggers), and their poison queues. The app
// creates these and all its other tables, containers and queues at start as well; declaring them here makes them
// exist before the first queue-triggered function is indexed. A test checks every queue function's queue is here.
// The durable job engine's task-hub queues, tables and containers are not here: it creates them itself at start
// (CreateIfNotExists) under the app identity's data roles, and their names follow the task hub's.
var queueNames = [
  'password-resets'
  'password-resets-poison'
  'event-relay'
  'event-relay-poison'
  'webhook-deliveries'
  'webhook-deliveries-poison'
  'webhook-receipts'
  'webhook-receipts-poison'
  'webhook-receiver-cleanup'
  'webhook-receiver-cleanup-poison'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: groupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'platform-identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'platform-storage'
  scope: resourceGroup(storageGroupName)
  params: {
    name: names.storage
    location: location
    tags: tags
    createAccount: !useExistingStorage
    skuName: storageSkuName
    deploymentContainerName: 'app-package'
    queueNames: queueNames
    appPrincipalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'platform-monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'platform-keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    enablePurgeProtection: keyVaultPurgeProtection
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'platform-functionapp'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyInstances: alwaysReadyInstances
    publicBaseUrl: publicBaseUrl
  }
}

@description('Base URL of the Platform API (routes under /api/v1).')
output API_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}/api/v1'

@description('https URL of the function app (health: /api/health/live, docs: /api/docs).')
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'

@description('Name of the function app.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Resource group of the environment.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Region of the environment.')
output AZURE_LOCATION string = location

@description('Tenant of the subscription.')
output AZURE_TENANT_ID string = subscription().tenantId

@description('Name of the Key Vault that holds token-signing-key and data-encryption-key.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('URI of that Key Vault.')
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri

@description('Name of the storage account.')
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name

@description('Client ID of the managed identity the app runs as.')
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
